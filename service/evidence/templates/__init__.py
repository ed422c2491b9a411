"""Files shipped inside evidence bundles (verify.py is run by relying parties, stdlib only)."""
