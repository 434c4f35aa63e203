"""Analytics: series access, forecasting models, backtests and the scheduled forecast job."""
