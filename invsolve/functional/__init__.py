"""Pure tensor kernels shared by operators and methods."""
