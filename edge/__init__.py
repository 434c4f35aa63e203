"""The edge agent: sensor drivers, debounce and counting, store-and-forward buffer, publisher."""
