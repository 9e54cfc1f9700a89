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
  /** Milliseconds spent choosing the backend and loading the weights. */
  loadMs: number;
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

export interface TrainOptions {
  method: "prompt-tuning" | "ia3";
  /** Texts in the style to learn. */
  examples: string[];
  /** Optimizer steps; default 30. */
  steps?: number;
  /** Peak learning rate; default 0.03 (prompt tuning) or 0.1 (IA³). */
  lr?: number;
  /** Rows per step; default 4. */
  batch?: number;
  /** Tokens per row; default 64. */
  seqLen?: number;
  warmup?: number;
  /** Seed of the adapter's initialization and the data order; default 1. */
  seed?: number;
  /** Soft prompt length (prompt tuning); default 8. */
  numVirtualTokens?: number;
  /** Initialize the soft prompt from this text (prompt tuning). */
  initText?: string;
  /** IA³ target layers; default PEFT's (k_proj, v_proj, down_proj). */
  targetModules?: string[];
  feedforwardModules?: string[];
  /** Aborting stops after the current step and rejects with an AbortError; the adapter trained so far stays attached. */
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainResult {
  peftType: "PROMPT_TUNING" | "IA3";
  /** Trainable values in the adapter. */
  params: number;
  steps: number;
  /** Training loss of every step. */
  losses: number[];
  tokens: number;
  tokensPerSec: number;
  elapsedMs: number;
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

/** PEFT files by name: adapter_config.json and adapter_model.safetensors. */
export type PeftFiles = Record<string, Uint8Array>;

export declare class Graft {
  /** Starts a worker, loads graft.wasm and the base model. */
  static load(opts: LoadOptions): Promise<Graft>;
  readonly info: ModelInfo;
  readonly backend: Backend;
  /** Trains a new adapter (replacing any attached one) on the examples. */
  train(opts: TrainOptions): Promise<TrainResult>;
  generate(prompt: string, opts?: GenerateOptions): Promise<GenerateResult>;
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
