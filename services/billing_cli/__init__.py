"""The operator's ``billing`` command: accounts, invoices, runs, reports and dead letters of the deployed system."""
