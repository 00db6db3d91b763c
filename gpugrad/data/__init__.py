"""``gg.data``: datasets, the DataLoader, the bundled 8x8 digits and MNIST-format IDX files."""
from .dataloader import DataLoader, default_collate
from .dataset import Dataset, Subset, TensorDataset, random_split
from .digits import load_digits
from .idx import load_mnist, read_idx, write_idx

__all__ = [
           "DataLoader",
           "Dataset",
           "Subset",
           "TensorDataset",
           "default_collate",
           "load_digits",
           "load_mnist",
           "random_split",
           "read_idx",
           "write_idx",
]
