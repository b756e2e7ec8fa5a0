"""The pure analysis core: catalog, series, judging, trends, bottlenecks. No I/O, no clock."""
