import SignoffCLI

await SignoffCLI.main()
