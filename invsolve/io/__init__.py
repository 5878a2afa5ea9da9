"""Reading inputs (HDF5, PNG/TIFF, NumPy) and writing HDF5 results atomically."""
