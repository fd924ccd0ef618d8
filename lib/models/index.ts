// The paper's two models: the WikiText-103 language model and the DeiT-tiny vision transformer.
export { LanguageModel } from './language-model';
export type { LanguageModelConfig } from './language-model';
export type { BlockAttentionConfig } from './block-attention';
export type { GenerateOptions, GenerateResult } from './generate';
export { sampleToken, resolveSampling } from './sampling';
export type { SamplingOptions, ResolvedSampling } from './sampling';
export { VisionTransformer } from './vision-transformer';
export type { VisionTransformerConfig } from './vision-transformer';
export { PatchEmbed, patchify } from './patch-embed';
export type { PatchEmbedOptions } from './patch-embed';
