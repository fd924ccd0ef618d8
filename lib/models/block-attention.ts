// The attention part of the models' configurations (LanguageModelConfig, VisionTransformerConfig):
// the kind and its settings, their checks, and the MultiHeadAttention options of block i (with
// 'neural', the blocks of neuralLayers are 'neural' and the others 'dot').
import type { FavorSettings, FourierKernelSettings, NeuralSettings, RadiusSharing } from '../nn/attention';
import { AttentionKind, checkAttentionKind } from '../nn/attention-kind';
import { blockAttention, checkNeuralLayers } from '../nn/neural-score';

export interface BlockAttentionConfig extends FourierKernelSettings, NeuralSettings, FavorSettings {
  attention: AttentionKind;
  /** R's initial value (the language model's default: 2, the vision transformer's: 1). */
  radiusInit?: number;
  radius?: RadiusSharing;
}

/** Checks the attention settings of a model of `layers` blocks, naming the cfg field. */
export function checkBlockAttention(cfg: BlockAttentionConfig, layers: number): void {
  checkAttentionKind(cfg.attention, 'cfg.attention');
  checkNeuralLayers(cfg.neuralLayers, layers, 'cfg.neuralLayers');
  if (
    cfg.radiusInit !== undefined &&
    !(typeof cfg.radiusInit === 'number' && cfg.radiusInit > 0 && Number.isFinite(cfg.radiusInit))
  ) {
    throw new Error(`cfg.radiusInit: expected a finite number > 0, got ${String(cfg.radiusInit)}`);
  }
}

/** Block i's attention options (TransformerBlock's), R initialised to the model's default unless cfg sets it. */
export function blockAttentionOptions(cfg: BlockAttentionConfig, i: number, defaultRadius: number) {
  return {
    attention: blockAttention(cfg.attention, cfg.neuralLayers, i),
    neuralDim: cfg.neuralDim,
    radius: cfg.radius,
    radiusInit: cfg.radiusInit ?? defaultRadius,
    power: cfg.power,
    eps: cfg.eps,
    stable: cfg.stable,
    features: cfg.features,
    randomFeatures: cfg.randomFeatures,
    redrawFeatures: cfg.redrawFeatures,
    rpeFrequencies: cfg.rpeFrequencies,
    rpeComponents: cfg.rpeComponents,
  };
}
