"""The portal page's files, served on a public route (no key): what asking for them keeps in a container."""

import gc
import tracemalloc

from hookrelay import portal


def test_names_of_no_page_file_keep_nothing_in_the_container() -> None:
    # Every name asked for was kept (a cache of the 404 too), so anyone without a key could grow each warm
    # API container's memory by a URL a request.
    assert portal.page_file("portal.js") is not None
    tracemalloc.start()
    try:
        found = [portal.page_file(f"{index:04d}{'a' * 6000}.js") for index in range(300)]
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == [None] * 300
    assert kept < 50_000  # the names alone are 1.8 MB
