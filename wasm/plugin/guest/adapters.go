package guest

import (
	"github.com/graft-ml/graft/core/formats/bundle"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// find returns the index of the named adapter, or -1.
func (p *Plugin) find(name string) int {
	for i, a := range p.adapters {
		if a.name == name {
			return i
		}
	}
	return -1
}

// checkNewName rejects an empty or taken adapter name.
func (p *Plugin) checkNewName(name string) error {
	if name == "" {
		return errorf(abi.CodeBadRequest, "adapter name is empty")
	}
	if p.find(name) >= 0 {
		return errorf(abi.CodeExists, "adapter %q is already loaded; unload it first", name)
	}
	return nil
}

// loadAdapter loads a saved adapter from its files or a bundle.
func (p *Plugin) loadAdapter(args abi.LoadAdapterArgs) (abi.AdapterInfo, error) {
	m, err := p.needModel()
	if err != nil {
		return abi.AdapterInfo{}, err
	}
	if err := p.checkNewName(args.Name); err != nil {
		return abi.AdapterInfo{}, err
	}
	files := args.Files
	switch {
	case len(files) > 0 && len(args.Bundle) > 0:
		return abi.AdapterInfo{}, errorf(abi.CodeBadRequest, "adapter %q: give files or a bundle, not both", args.Name)
	case len(args.Bundle) > 0:
		if files, err = bundle.Decode(args.Bundle, args.Name); err != nil {
			return abi.AdapterInfo{}, errorf(abi.CodeBadRequest, "%v", err)
		}
	case len(files) == 0:
		return abi.AdapterInfo{}, errorf(abi.CodeBadRequest, "adapter %q: no files and no bundle", args.Name)
	}
	a, warnings, err := peft.LoadAdapter(m, peft.InMemory(args.Name, peft.Files(files)))
	if err != nil {
		return abi.AdapterInfo{}, err
	}
	return p.keep(args.Name, a, warnings), nil
}

// keep records a loaded adapter and describes it.
func (p *Plugin) keep(name string, a peft.Adapter, warnings []string) abi.AdapterInfo {
	info := abi.AdapterInfo{Name: name, PeftType: a.PeftType(), Warnings: warnings}
	for _, prm := range a.Params() {
		info.Params += prm.Value.Shape().Numel()
		info.Trainable = append(info.Trainable, prm.Name)
	}
	p.adapters = append(p.adapters, namedAdapter{name: name, a: a, info: info})
	return info
}

// unloadAdapter removes an adapter from the model.
func (p *Plugin) unloadAdapter(name string) error {
	i := p.find(name)
	if i < 0 {
		return errorf(abi.CodeNotFound, "adapter %q is not loaded", name)
	}
	if err := p.adapters[i].a.Unload(); err != nil {
		return err
	}
	p.adapters = append(p.adapters[:i], p.adapters[i+1:]...)
	return nil
}

// exportAdapter encodes an adapter in PEFT's format.
func (p *Plugin) exportAdapter(args abi.ExportArgs) (abi.ExportResult, error) {
	i := p.find(args.Name)
	if i < 0 {
		return abi.ExportResult{}, errorf(abi.CodeNotFound, "adapter %q is not loaded", args.Name)
	}
	a := p.adapters[i].a
	files, err := a.Files()
	if err != nil {
		return abi.ExportResult{}, err
	}
	res := abi.ExportResult{PeftType: a.PeftType()}
	if !args.Bundle {
		res.Files = files
		return res, nil
	}
	if res.Bundle, err = bundle.Encode(files); err != nil {
		return abi.ExportResult{}, err
	}
	return res, nil
}
