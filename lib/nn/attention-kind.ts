// The attention kinds of MultiHeadAttention, the models and the CLI's --attention (see
// lib/nn/attention.ts for what each computes): the one type every layer names them by.
export type AttentionKind = 'fourier' | 'dot' | 'neural' | 'performer' | 'flt';
export const ATTENTION_KINDS: readonly AttentionKind[] = ['fourier', 'dot', 'neural', 'performer', 'flt'];

/** value as an AttentionKind, or an Error naming `what` and the kinds. */
export function checkAttentionKind(value: unknown, what: string): AttentionKind {
  if (!(ATTENTION_KINDS as readonly unknown[]).includes(value)) {
    throw new Error(
      `${what}: expected ${ATTENTION_KINDS.map((k) => `'${k}'`).join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as AttentionKind;
}
