from crowdkit.cli import main

main()
