"""The learning loop's pure core: outcomes, summaries, calibration, effectiveness."""
