#!/usr/bin/env python3
"""Render core/chattemplate's test conversations with Python's Jinja2, set up
as transformers' apply_chat_template sets it up, to give the expected texts
the Go renderer is checked against (an independent implementation of the
same templates).

    python3 tools/chattemplate/render.py        # rewrites testdata/expected/

Reads core/chattemplate/testdata/cases.json and testdata/templates/*.jinja and
writes testdata/expected/TEMPLATE.CASE.txt. Needs only python3-jinja2 (apt
install python3-jinja2); transformers itself is not needed.
"""

import json
import sys
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parents[2] / "core" / "chattemplate" / "testdata"


def environment():
    # transformers.utils.chat_template_utils._compile_jinja_template:
    # trim_blocks and lstrip_blocks, loop controls, tojson without ASCII
    # escaping, raise_exception and strftime_now.
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    cases = json.loads((ROOT / "cases.json").read_text(encoding="utf-8"))
    env = environment()
    out_dir = ROOT / "expected"
    out_dir.mkdir(exist_ok=True)
    for old in out_dir.glob("*.txt"):
        old.unlink()
    written = 0
    for name, tokens in cases["templates"].items():
        source = (ROOT / "templates" / (name + ".jinja")).read_text(encoding="utf-8")
        template = env.from_string(source)
        for case in cases["cases"]:
            if "only" in case and name not in case["only"]:
                continue
            context = dict(case.get("vars", {}))
            context.update(tokens)
            context["messages"] = case["messages"]
            context["add_generation_prompt"] = case.get("add_generation_prompt", False)
            text = template.render(**context)
            (out_dir / f"{name}.{case['name']}.txt").write_text(text, encoding="utf-8", newline="")
            written += 1
    print(f"wrote {written} renderings to {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
