"""The market's rules: exchange rule packs (data files), trading calendars, margin and combinations."""
