"""Tools around the product: benchmarks, the device check, throwaway servers, the dashboard, the UI."""
