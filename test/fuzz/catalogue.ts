// Every fuzz property, valid and invalid, in one list that the runner picks from by weight.
import { attentionProperties } from './properties/attention';
import { fileProperties } from './properties/files';
import { invalidProperties } from './properties/invalid';
import { moduleProperties } from './properties/modules';
import { nnOpProperties } from './properties/nn-ops';
import type { Property } from './property';
import { tensorOpProperties } from './properties/tensor-ops';

export const catalogue: Property[] = [
  ...attentionProperties,
  ...tensorOpProperties,
  ...nnOpProperties,
  ...moduleProperties,
  ...fileProperties,
  ...invalidProperties,
];
