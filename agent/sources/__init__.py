"""Live metric sources that keep the metric store filled: the KPI stream and Prometheus."""
