"""Imports of account exports: Zerodha Console tradebooks and ledgers, and CAS PDFs (parsed in a limited child
process)."""
