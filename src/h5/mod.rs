//! Keras HDF5 files (filled in by the h5 work).
