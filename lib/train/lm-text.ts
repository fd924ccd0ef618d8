// Text in and out of a language-model run: its vocabulary file (vocab.json, which training
// writes into the run folder), a prompt as token ids (the corpus's word tokenising:
// whitespace-separated tokens, each line ended by '<eos>' as in training, except the last; words
// not in the vocabulary read as '<unk>'), and ids back to text ('<eos>' as a line break).
import * as fs from 'fs';
import * as path from 'path';
import { tokenizeLine } from '../data/tokenize';
import { Vocabulary, VocabularyJSON } from '../data/vocabulary';

export const VOCAB_JSON = 'vocab.json';

/** The sampling of text shown to people: `fourierformer generate`'s defaults, training's samples, the demo's. */
export const TEXT_SAMPLING = { temperature: 0.8, topK: 40, topP: 0.95 };

/** Writes a run's vocabulary next to its checkpoints. */
export function writeRunVocabulary(runDir: string, vocab: Vocabulary): void {
  fs.mkdirSync(runDir, { recursive: true });
  fs.writeFileSync(path.join(runDir, VOCAB_JSON), JSON.stringify(vocab.toJSON()));
}

/** The vocabulary saved in a run folder, or null when it has none. */
export function readRunVocabulary(runDir: string): Vocabulary | null {
  const file = path.join(runDir, VOCAB_JSON);
  if (!fs.existsSync(file)) return null;
  try {
    return Vocabulary.fromJSON(JSON.parse(fs.readFileSync(file, 'utf8')) as VocabularyJSON);
  } catch (e) {
    throw new Error(`${file}: not a vocabulary (${(e as Error).message})`, { cause: e });
  }
}

/** A prompt's token ids and the words of it that the vocabulary does not hold (read as '<unk>'). */
export function encodePrompt(text: string, vocab: Vocabulary): { ids: number[]; unknown: string[] } {
  const lines = text.split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1].trim() === '') lines.pop(); // the newline that ends a file or `echo`
  const ids: number[] = [];
  const unknown: string[] = [];
  lines.forEach((line, i) => {
    for (const word of tokenizeLine(line)) {
      const id = vocab.id(word);
      if (id === vocab.unkId && word !== vocab.token(vocab.unkId)) unknown.push(word);
      ids.push(id);
    }
    if (i < lines.length - 1) ids.push(vocab.eosId);
  });
  return { ids, unknown };
}

/** How a token continues text: '<eos>' ends the line, a word follows a space (none at a line's start). */
export function tokenText(id: number, vocab: Vocabulary, atLineStart: boolean): string {
  if (id === vocab.eosId) return '\n';
  return (atLineStart ? '' : ' ') + vocab.token(id);
}

/** Tokens as one line of text, for logs: words joined by spaces, '<eos>' kept as a word. */
export function tokensLine(ids: number[], vocab: Vocabulary): string {
  return vocab.decode(ids).join(' ');
}
