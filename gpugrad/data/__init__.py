"""``gg.data``: datasets, samplers, the DataLoader, the bundled 8x8 digits and MNIST-format IDX files."""
from ._worker import get_worker_info
from .addition import addition_dataset
from .dataloader import DataLoader, default_collate, default_convert
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset, TensorDataset,
                      random_split)
from .digits import load_digits
from .distributed import DistributedSampler
from .idx import load_mnist, read_idx, write_idx
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)

__all__ = [
           "BatchSampler",
           "ChainDataset",
           "ConcatDataset",
           "DataLoader",
           "Dataset",
           "DistributedSampler",
           "IterableDataset",
           "RandomSampler",
           "Sampler",
           "SequentialSampler",
           "StackDataset",
           "Subset",
           "SubsetRandomSampler",
           "TensorDataset",
           "WeightedRandomSampler",
           "addition_dataset",
           "default_collate",
           "default_convert",
           "get_worker_info",
           "load_digits",
           "load_mnist",
           "random_split",
           "read_idx",
           "write_idx",
]
