"""党员信息电子台账 (the member ledger): members, status, transfers, PII, import, export."""
