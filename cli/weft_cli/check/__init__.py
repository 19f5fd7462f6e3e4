"""`weft check`: pure verdicts on what the cluster shows, and the reads behind them."""
