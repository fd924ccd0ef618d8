// Data for the experiments: text corpora (WikiText, Brown), vocabularies, the encoded-corpus cache
// and language-model batches; image datasets (Fashion-MNIST, CIFAR-10, image folders), timm's
// transforms on 8-bit images (Pillow's resampling and RandAugment operations), repeated
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
export type { LMBatchesOptions } from './lm-batches';
export type { LMBatch } from './lm-batches';
export type { ImageSample, ImageDataset, DecodedSample, Split } from './image-dataset';
export type { ByteImage, CropBox } from './byte-image';
export { toPlanarFloat, fromPlanarBytes, crop, flipHorizontal } from './byte-image';
export { resize, resizeShorterSide, resizeAndCenterCrop, centerCropBox } from './resample';
export type { ResampleFilter } from './resample';
export * as imageOps from './image-ops';
export { parseRandAugment, randAugmentPolicy, randAugment } from './rand-augment';
export type { RandAugmentPolicy, RandAugmentSpec, RandAugmentStep } from './rand-augment';
export { repeatedAugmentationOrder } from './repeated-sampler';
export { ByteImageDataset } from './image-dataset';
export { readIdx, parseIdx } from './idx';
export type { IdxArray } from './idx';
export { loadFashionMnist, FASHION_MNIST_DIR, FASHION_MNIST_CLASSES } from './fashion-mnist';
export { loadCifar10, CIFAR10_CLASSES } from './cifar10';
export { loadImageFolder } from './image-folder';
export type { ImageFolderOptions } from './image-folder';
export { evaluationAugment, randomResizedCropBox, normalize, randomErasing, transformImage } from './augment';
export type { AugmentOptions } from './augment';
export { mixBatch, mixTargets, cutmixBox } from './mix';
export type { MixOptions, MixResult, CutmixBox } from './mix';
export { ImageLoader } from './image-loader';
export type { ImageBatch, ImageLoaderOptions } from './image-loader';
