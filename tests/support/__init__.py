"""What the tests and the benchmarks share: throwaway servers, seeded data, file systems."""
