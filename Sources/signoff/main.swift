import SignoffCLI
