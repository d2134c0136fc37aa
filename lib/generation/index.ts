// Text generation (greedy / sampling through the key/value cache) and chat templates.
export { generate, streamGenerate } from "./generate";
export type { Prompt, FinishReason, GenerationChunk, GenerationOutput } from "./generate";
export { readGenerationConfig, resolveGenerationConfig, GENERATION_DEFAULTS } from "./config";
export type { GenerationOptions, GenerationConfig } from "./config";
export { applyChatTemplate } from "./chat";
export type { ChatMessage, ChatTemplateOptions } from "./chat";
