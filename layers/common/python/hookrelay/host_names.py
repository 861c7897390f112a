"""Host names as they go on the wire: an internationalised one as IDNA's A-labels (UTS #46, as browsers and
requests map it), so that every check of a host (the address guard, which service a webhook is) sees the
name the request goes to."""


def ascii_host(host: str) -> str:
    """The host in ASCII (`bücher.example` as `xn--bcher-kva.example`, full-width letters as their ASCII);
    an ASCII one as written. ValueError (idna's IDNAError) for a name IDNA cannot write in ASCII."""
    if host.isascii():
        return host
    # Imported for such names only: its tables would cost every cold start 3 ms.
    import idna  # noqa: PLC0415 - see above

    return idna.encode(host, uts46=True).decode("ascii")
