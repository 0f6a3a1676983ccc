"""``sklyap cache``: where the cache is, what it holds; clear it."""


def register(commands):
    """Add the cache command to ``commands`` (argparse subparsers)."""
    d = commands.add_parser(
        "cache",
        help="where the cache of trained networks and spectra is, and what it holds; clear it",
        description="The cache of trained populations and their spectra. Entries are keyed "
        "by what they depend on (code, versions, weights, inputs) and checked when read; "
        "none is deleted automatically. 'info' says where the cache is, what it holds and "
        "how much of it was made by other code or versions (stale); 'clear' removes it "
        "(--stale: only the stale entries).",
    )
    d.add_argument("action", choices=["info", "clear"], help="info or clear")
    d.add_argument("--stale", action="store_true", help="with clear: only stale entries")
    d.add_argument(
        "--cache-dir",
        default=None,
        help="the cache folder (default: $SKLYAP_CACHE_DIR or ~/.cache/sklyap)",
    )
    d.set_defaults(func=cache, command_parser=d)


def cache(args):
    """Where the cache is and what it holds; or clear it."""
    from ..cache import cache_info, clear_cache

    if args.action == "info":
        print(cache_info(args.cache_dir))
        return 0
    removed = clear_cache(args.cache_dir, stale_only=args.stale)
    what = "stale entries" if args.stale else "entries and folders"
    print(f"Removed {len(removed)} {what} from {cache_info(args.cache_dir).location}")
    return 0
