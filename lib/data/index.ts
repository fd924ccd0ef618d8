// Data for the experiments: text corpora (WikiText, Brown), vocabularies, the encoded-corpus cache
// and language-model batches; image datasets (Fashion-MNIST, CIFAR-10, image folders),
// augmentation, mixup/cutmix and the prefetching image loader.
export { Vocabulary, checkVocabularyOptions, UNK, EOS } from './vocabulary';
export type { VocabularyOptions, VocabularyJSON } from './vocabulary';
export { tokenizeLine, brownWords } from './tokenize';
export type { LMCorpus, CorpusOptions, ProgressCallback } from './lm-corpus';
export { loadWikiText, WIKITEXT_FILES } from './wikitext';
export type { WikiTextOptions } from './wikitext';
export { loadBrown, brownFiles, brownSplit } from './brown';
export type { BrownOptions } from './brown';
export { cacheKey, cacheFile, readCorpusCache, writeCorpusCache } from './corpus-cache';
export type { CacheKey, CacheStatus } from './corpus-cache';
export { LMBatches } from './lm-batches';
export type { LMBatch } from './lm-batches';
export type { ImageSample, ImageDataset, Split } from './image-dataset';
export { ByteImageDataset } from './image-dataset';
export { readIdx, parseIdx } from './idx';
export type { IdxArray } from './idx';
export { loadFashionMnist, FASHION_MNIST_DIR, FASHION_MNIST_CLASSES } from './fashion-mnist';
export { loadCifar10, CIFAR10_CLASSES } from './cifar10';
export { loadImageFolder } from './image-folder';
export type { ImageFolderOptions } from './image-folder';
export { evaluationAugment, randomResizedCropBox, resizedCrop, horizontalFlip, normalize, randomErasing } from './augment';
export type { AugmentOptions, CropBox } from './augment';
export { mixBatch, mixTargets, cutmixBox } from './mix';
export type { MixOptions, MixResult, CutmixBox } from './mix';
export { ImageLoader } from './image-loader';
export type { ImageBatch, ImageLoaderOptions } from './image-loader';
