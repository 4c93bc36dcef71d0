"""党纪处分 (discipline sanctions)."""
