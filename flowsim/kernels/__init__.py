"""numba kernels: each module imports only numpy and numba and works on plain arrays."""
