/** Where the model runs: the browser's WebGPU or graft's CPU backend in wasm. */
export type Backend = "webgpu" | "cpu";

export interface LoadOptions {
  /** URL of graft.wasm; default: dist/graft.wasm beside this module. */
  wasmURL?: string | URL;
  /** graft.wasm's bytes, instead of wasmURL. */
  wasm?: Uint8Array | ArrayBuffer;
  /** URL of the base model: a GGUF file or a msgpack bundle holding one. */
  modelURL?: string | URL;
  /** The model's bytes, instead of modelURL. */
  model?: Uint8Array | ArrayBuffer;
  /** Name of the model in errors and info; default: the URL's last part. */
  modelName?: string;
  /** "auto" (default): WebGPU when navigator.gpu gives an adapter, else the CPU. */
  backend?: "auto" | Backend;
  /** URL of worker.js; default: beside this module. */
  workerURL?: string | URL;
  /** "nf4" quantizes the base's projections to NF4 (bitsandbytes' format) on load, as `graft train --quantize nf4` does: LoRA trained on it is QLoRA. */
  quantize?: "nf4";
  /** With quantize: also quantize the block scales (bitsandbytes' double quantization). */
  doubleQuant?: boolean;
  /** false runs the CPU backend on the portable Go kernels even where graft's WebAssembly SIMD128 kernels can run (default true: them, where the engine has SIMD128). */
  simd?: boolean;
  signal?: AbortSignal;
}

export interface ModelInfo {
  name: string;
  backend: Backend;
  /** Why "auto" chose the CPU, or the WebGPU adapter's name. */
  backendNote?: string;
  arch: string;
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  context: number;
  params: number;
  /** "nf4" when loaded with quantize. */
  quantized?: "nf4";
  /** On the CPU backend, its kernels: "wasm-simd128" (graft's WebAssembly SIMD128 kernels) or "go" (the portable ones). */
  kernels?: string;
  /** Why the SIMD128 kernels are not in use, where they were asked for. */
  kernelsNote?: string;
  /** Milliseconds spent choosing the backend and loading the weights. */
  loadMs: number;
}

/**
 * A PEFT method's --method name. Any name methods() lists trains; these
 * are the ones every build has.
 */
export type MethodName =
  | "lora" | "vera" | "ia3" | "prompt-tuning" | "prefix-tuning" | "houlsby" | "pfeiffer"
  | (string & {});

/** One entry of graft's method registry. */
export interface MethodInfo {
  name: MethodName;
  /** adapter_config.json's peft_type ("LORA"; "BOTTLENECK", AdapterHub's adapters, for houlsby and pfeiffer). */
  peftType: string;
  summary: string;
  /** The recommended learning rate: train's default for the method. */
  lr: number;
  /** Whether the adapter can be folded into the base weights. */
  mergeable: boolean;
  /** The adapter_config.json fields a new adapter starts from, beneath options. */
  defaults?: Record<string, unknown>;
}

/** A training record in any form graft train reads. */
export type TrainRecord =
  | { text: string }
  | { prompt: string; completion: string }
  | { messages: { role: string; content: string }[] }
  | { instruction: string; input?: string; output: string };

/**
 * A whole training run, as `graft train --config run.json` reads it (Go's
 * train.Spec; its snake_case keys). Zero fields take graft's defaults.
 */
export interface TrainSpec {
  /** The base model's name, recorded in the adapter's config (base_model_name_or_path). */
  model?: string;
  records?: TrainRecord[];
  eval_records?: TrainRecord[];
  /** Renders {messages} records; default: the model's own chat template. */
  chat_template?: string;
  /** Variables for the chat template (say, { enable_thinking: false }). */
  chat_template_vars?: Record<string, unknown>;
  seq_len?: number;
  batch?: number;
  pack?: boolean;
  method?: MethodName;
  /** adapter_config.json fields over the method's defaults. */
  options?: Record<string, unknown>;
  /** A mixed stack: several adapters trained together, instead of method and options. */
  stack?: { method: MethodName; options?: Record<string, unknown> }[];
  /** A whole adapter_config.json instead of method and options. */
  config?: Record<string, unknown>;
  /** Export a PiSSA/OLoRA adapter as the equivalent plain LoRA for the original base. */
  convert_lora?: boolean;
  /** The run's length: steps, or epochs over the records. One of them is required. */
  steps?: number;
  epochs?: number;
  lr?: number;
  warmup?: number;
  schedule?: "cosine" | "linear" | "constant";
  grad_accum?: number;
  weight_decay?: number;
  max_grad_norm?: number;
  seed?: number;
  checkpointing?: boolean;
  eval_every?: number;
  [key: string]: unknown;
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
  loss: number;
  /** Input tokens trained on so far. */
  tokens: number;
  tokensPerSec: number;
  elapsedMs: number;
}

/**
 * What to train: a whole spec, or the short fields, which override the
 * spec's where given. Defaults are graft's, the same as graft train's
 * (the method's recommended learning rate, targets, virtual tokens).
 */
export interface TrainOptions {
  /** A whole training run. */
  spec?: TrainSpec;
  /** Any name methods() lists, or several joined by "+" for a mixed stack trained together ("lora+prefix-tuning"). */
  method?: MethodName;
  /** adapter_config.json fields over the method's defaults, e.g. { r: 4, use_dora: true }. */
  options?: Record<string, unknown>;
  /** Texts in the style to learn (spec.records). */
  examples?: string[];
  /** Held-out texts, evaluated before and after training (spec.eval_records). */
  evalExamples?: string[];
  /** Optimizer steps, or epochs (passes over the examples): one of them is required, graft has no default length. */
  steps?: number;
  epochs?: number;
  /** Peak learning rate; default the method's recommended one. */
  lr?: number;
  /** Rows per step. */
  batch?: number;
  /** Tokens per row. */
  seqLen?: number;
  warmup?: number;
  /** Seed of the adapter's initialization, the data order and dropout. */
  seed?: number;
  /** Soft prompt or prefix length (prompt and prefix tuning): options.num_virtual_tokens. */
  numVirtualTokens?: number;
  /** Initialize the soft prompt from this text (prompt tuning). */
  initText?: string;
  /** Target layers: options.target_modules. */
  targetModules?: string[];
  /** IA³'s feed-forward layers: options.feedforward_modules. */
  feedforwardModules?: string[];
  /** Aborting stops after the current step and rejects with an AbortError; the adapter trained so far stays attached. */
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainResult {
  /** The adapter's peft_type: "LORA", "PROMPT_TUNING", "IA3", ...; "MIXED" for a stack. */
  peftType: string;
  /** Trainable values in the adapter. */
  params: number;
  /** The base model's values. */
  totalParams: number;
  steps: number;
  /** The run's length. */
  totalSteps: number;
  /** Training loss of every step. */
  losses: number[];
  tokens: number;
  tokensPerSec: number;
  elapsedMs: number;
  /** Held-out loss before the first and after the last step, with evalExamples. */
  evalBefore?: number;
  evalAfter?: number;
  /** The run as carried out, defaults filled in (without the records). */
  spec: TrainSpec;
}

export interface GenerateOptions {
  /** New tokens at most; default 64. */
  maxTokens?: number;
  /** 0 (default) is greedy decoding. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** false generates with the base model alone; default true. */
  adapter?: boolean;
}

export interface GenerateResult {
  /** The continuation, without the prompt. */
  text: string;
  ids: number[];
  usedAdapter: boolean;
}

export interface EvaluateOptions {
  /** false scores with the base model alone; default true. */
  adapter?: boolean;
}

/** Mean negative log-likelihood per predicted token over all texts, as graft eval reports it. */
export interface EvaluateResult {
  loss: number;
  perplexity: number;
  /** Predicted tokens scored. */
  tokens: number;
  usedAdapter: boolean;
}

/** PEFT files by name: adapter_config.json and adapter_model.safetensors. */
export type PeftFiles = Record<string, Uint8Array>;

export declare class Graft {
  /** Starts a worker, loads graft.wasm and the base model. */
  static load(opts: LoadOptions): Promise<Graft>;
  readonly info: ModelInfo;
  readonly backend: Backend;
  /** Every PEFT method train accepts. */
  methods(): Promise<MethodInfo[]>;
  /** Trains a new adapter (replacing any attached one) on the examples. */
  train(opts: TrainOptions): Promise<TrainResult>;
  generate(prompt: string, opts?: GenerateOptions): Promise<GenerateResult>;
  /** Loss of the texts (each with BOS, whole): how well the model, with the adapter or without, predicts them. */
  evaluate(texts: string[], opts?: EvaluateOptions): Promise<EvaluateResult>;
  /** Logits of every position of prompt (with BOS), positions × vocab. */
  logits(prompt: string): Promise<Float32Array>;
  exportAdapter(format: "peft"): Promise<PeftFiles>;
  exportAdapter(format: "msgpack"): Promise<Uint8Array>;
  exportAdapter(format?: "peft" | "msgpack"): Promise<PeftFiles | Uint8Array>;
  /** Loads an adapter (a msgpack bundle or PEFT files) in place of the attached one; resolves to its peft_type. */
  importAdapter(data: Uint8Array | ArrayBuffer | PeftFiles, name?: string): Promise<string>;
  /** Removes the adapter: back to the base model. */
  dropAdapter(): Promise<void>;
  /** Stops the worker; later calls reject. */
  dispose(): void;
}

export default Graft;
