"""The seed use case end to end: workers get ranges, stream their lines, write their output to
storage and hand back its URL; the coordinator reads the parts back in range order."""

from lambdaflow import LambdaExecutor, storage


def shout(byte_range, out):
    with storage.open_write(f"{out}/part-{byte_range.start:012d}") as sink:
        for line in byte_range.lines():
            sink.write(line.upper())
    return sink.url


def test_workers_write_parts_whose_urls_rebuild_the_output(root):
    lines = [b"alpha\n", b"beta\r\n", b"\xff\x00 gamma\n", b"\n", b"x" * 5000 + b"\n", b"tail"]
    data = b"".join(lines * 40)
    source = storage.put(f"{root}/in.txt", data)
    ranges = storage.split(source, n=7)
    with LambdaExecutor(2) as executor:
        urls = list(executor.map(shout, ranges, [f"{root}/out"] * len(ranges)))
    assert urls == sorted(urls) and len(set(urls)) == 7
    assert b"".join(storage.get(url) for url in urls) == data.upper()
