"""Malformed inputs: each is real bytes on disk and must give a DataError with a telling message."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.errors import DataError

GOOD_ROWS = "".join(f"2024-01-01 00:0{i}:00,{i}.5,{10 - i}.25\n" for i in range(6))


def file_with(content: bytes | str, name: str = "data.csv"):
    """A builder writing ``content`` to ``tmp_path/name`` and returning that path."""

    def build(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return build


def missing_path(tmp_path: Path) -> Path:
    return tmp_path / "nowhere" / "absent.csv"


def folder(tmp_path: Path) -> Path:
    (tmp_path / "a_folder.csv").mkdir()
    return tmp_path / "a_folder.csv"


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    return path


def pump_with_status(value: str) -> str:
    rows = [f"{i},2018-04-01 00:0{i}:00,{i}.1,{i}.2,NORMAL" for i in range(5)]
    rows[3] = rows[3].replace("NORMAL", value)
    return ",timestamp,sensor_00,sensor_01,machine_status\n" + "\n".join(rows) + "\n"


CASES = [
    pytest.param(missing_path, {}, "absent.csv: no such file", id="missing-path"),
    pytest.param(folder, {}, "is a folder, not a CSV file", id="folder"),
    pytest.param(fifo, {}, "is not a regular file", id="named-pipe"),
    pytest.param(file_with(b""), {}, "is empty (0 bytes)", id="empty-file"),
    pytest.param(file_with(" \n\t\r\n   \n"), {}, "holds only blank lines or spaces", id="whitespace-only"),
    pytest.param(file_with("timestamp,a,b\n"), {}, "has a header line but no data rows", id="header-only"),
    pytest.param(file_with(b"\x00\x01\x02\x03junk\x00\xff" * 50), {}, "holds binary data, not text", id="binary-nul"),
    pytest.param(
        file_with(b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, "book.csv"),
        {},
        "zip archive (an Excel .xlsx",
        id="xlsx-renamed",
    ),
    pytest.param(file_with(b"\x1f\x8b\x08\x00" + b"\x00" * 40), {}, "gzip-compressed; unpack it first", id="gzip"),
    pytest.param(file_with('{"timestamp": "2024-01-01", "a": 1}\n'), {}, "looks like JSON, not CSV", id="json"),
    pytest.param(file_with("<html><body><table></table></body></html>\n"), {}, "looks like HTML or XML", id="html"),
    pytest.param(
        file_with("Dear operator\nThe pump was serviced today\nAll readings are in the log book\n"),
        {},
        "does not look like a CSV table: no comma, semicolon, tab or pipe",
        id="prose",
    ),
    pytest.param(
        file_with("timestamp\n2024-01-01 00:00:00\n2024-01-01 00:00:01\n2024-01-01 00:00:02\n"),
        {},
        "holds one column of times and no readings; export the sensor readings with them",
        id="timestamps-only",
    ),
    pytest.param(
        file_with("timestamp,site,operator\n2024-01-01,north,ann\n2024-01-02,south,bob\n"),
        {},
        "has no usable numeric sensor column ('site': not numeric; 'operator': not numeric)",
        id="no-numeric-column",
    ),
    pytest.param(
        file_with("a,b,c\n,5,\n,5,\n,5,\n"),
        {},
        "has no usable numeric sensor column ('a': empty throughout; 'b': constant value; 'c': empty throughout)",
        id="only-empty-and-constant-columns",
    ),
    pytest.param(
        file_with(
            "timestamp,sensor_01,sensor_03\n" + GOOD_ROWS + "2024-01-01 00:07:00,1.5,abc\n" + GOOD_ROWS.replace(":0", ":1")
        ),
        {},
        "column 'sensor_03' holds 'abc' on line 8, which is not a number",
        id="junk-text-in-sensor",
    ),
    pytest.param(
        file_with(
            "time;flow;pressure\r\n2024-01-01 00:00:00;1,5;2,5\r\n\r\n2024-01-01 00:00:01;#VALUE!;2,5\r\n"
            "2024-01-01 00:00:02;1,7;2,6\r\n2024-01-01 00:00:03;1,8;2,7\r\n"
        ),
        {},
        "column 'flow' holds '#VALUE!' on line 4, which is not a number",
        id="excel-error-in-semicolon-file-after-blank-line",
    ),
    pytest.param(
        file_with("timestamp,a,b\n2024-01-01 00:00:00,1.0,2.0\n"),
        {},
        "has only 1 usable row(s); at least 2 are needed",
        id="too-few-rows",
    ),
    pytest.param(
        file_with("timestamp,a,b\n" + GOOD_ROWS),
        {"min_rows": 100},
        "has only 6 usable row(s); at least 100 are needed",
        id="fewer-than-min-rows",
    ),
    pytest.param(
        file_with("timestamp,sensor_01,sensor_01\n" + GOOD_ROWS),
        {},
        "column name 'sensor_01' appears more than once in the header",
        id="duplicate-column-names",
    ),
    pytest.param(
        file_with("a,b,label\n1.5,2,0\n2.5,3,1\n3.5,4,2\n4.5,5,7\n"),
        {},
        "label column 'label' holds 2 on line 4; labels must be 0/1",
        id="label-not-0-1",
    ),
    pytest.param(
        file_with("a,b,status\n1.5,2,normal\n2.5,3,running\n"),
        {},
        "label column 'status' holds 'running' on line 3; labels must be 0/1, true/false or normal/abnormal",
        id="label-unknown-word",
    ),
    pytest.param(
        file_with(pump_with_status("MAYBE")),
        {},
        "column 'machine_status' holds 'MAYBE' on line 5; the pump schema allows only NORMAL, BROKEN, RECOVERING",
        id="pump-unknown-status",
    ),
    pytest.param(
        file_with(pump_with_status("")),
        {},
        "column 'machine_status' is empty on line 5",
        id="pump-empty-status",
    ),
    pytest.param(
        file_with(b"a,b\n1,2\n3,4\n5,\x81\x8d\x9d\n"),
        {},
        "is neither UTF-8 nor Latin-1 text (byte 0x81 on line 4)",
        id="unreadable-encoding",
    ),
    pytest.param(
        file_with("timestamp,a,b\n2024-01-01 00:00:00,1,2\n2024-01-01 00:00:01,3,4\n2024-01-01 00:00:02,5,6,7\n"),
        {},
        "line 4 has 4 fields but the header has 3",
        id="too-many-fields",
    ),
    pytest.param(
        file_with('timestamp,a,b\n2024-01-01 00:00:00,1,2\n2024-01-01 00:00:01,"3,4\n2024-01-01 00:00:02,5,6\n'),
        {},
        'a quote (") opened on line 3 is never closed',
        id="unclosed-quote",
    ),
    pytest.param(
        file_with("timestamp,a\n2024-01-01 00:00:00,1,2\n2024-01-01 00:00:01,3,4\n"),
        {},
        "its data rows have 3 fields but the header names 2 columns",
        id="header-lacks-a-name",
    ),
    pytest.param(
        file_with("1.5,2.5,3.5\n1.6,2.6,3.6\n1.7,2.7,3.7\n"),
        {},
        "its first line holds numbers (1.5,2.5,3.5), not column names; add a header line",
        id="no-header",
    ),
    pytest.param(
        file_with("timestamp,a,b\n2024-01-01 00:00:00,1,2\nyesterday,3,4\n2024-01-01 00:00:02,5,6\n"),
        {},
        "time column 'timestamp' holds 'yesterday' on line 3, which is not a date or time",
        id="bad-timestamp",
    ),
    pytest.param(
        file_with("timestamp,a,b\n,1,2\n2024-01-01 00:00:00,3,4\n,5,6\n"),
        {},
        "has only 1 usable row(s); at least 2 are needed",
        id="rows-without-timestamps",
    ),
    pytest.param(
        file_with("a" * (1 << 20) + "b,c\n1,2\n" + "1,2\n" * 1000),
        {},
        "its first line is over 1 MiB long",
        id="huge-header-line",
    ),
    pytest.param(
        file_with("timestamp,a,b\n" + GOOD_ROWS),
        {"sensors": ["a", "flow"]},
        "lacks the sensor column(s) 'flow' that the model or federation expects",
        id="requested-sensor-missing",
    ),
]


@pytest.mark.parametrize(("build", "kwargs", "fragment"), CASES)
def test_malformed_file_gives_a_clear_data_error(tmp_path, build, kwargs, fragment):
    path = build(tmp_path)
    with pytest.raises(DataError) as caught:
        load_sensor_csv(path, **kwargs)
    message = str(caught.value)
    assert fragment in message, f"expected {fragment!r} in {message!r}"
    assert "\n" not in message and "Traceback" not in message


def test_cases_cover_enough_kinds():
    assert len(CASES) >= 18


def _load_as_user(path: Path, uid: int) -> str:
    """Load ``path`` in a forked child that has given up root; return its error message."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no return from here
        message = "no error"
        try:
            os.close(read_end)
            os.setgid(uid)
            os.setuid(uid)
            load_sensor_csv(path)
        except DataError as exc:
            message = f"DataError: {exc}"
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            message = f"{type(exc).__name__}: {exc}"
        finally:
            os.write(write_end, message.encode("utf-8"))
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        message = fh.read().decode("utf-8")
    os.waitpid(pid, 0)
    return message


def test_unreadable_file_permission_denied(tmp_path):
    fragment = "cannot be read (permission denied); give your user read access"
    if os.geteuid() != 0:
        path = tmp_path / "locked.csv"
        path.write_text("a,b\n1,2\n3,4\n")
        path.chmod(0)
        try:
            with pytest.raises(DataError, match=r"cannot be read \(permission denied\)"):
                load_sensor_csv(path)
        finally:
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        return
    # Root reads anything, so read as the unprivileged 'nobody' in a forked child, from a
    # folder that user may enter.
    folder = Path(tempfile.mkdtemp(prefix="pumpfl-perm-"))
    try:
        folder.chmod(0o755)
        path = folder / "locked.csv"
        path.write_text("a,b\n1,2\n3,4\n")
        path.chmod(0)
        message = _load_as_user(path, 65534)
        assert message.startswith("DataError: ") and fragment in message, message
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


def test_bracketed_column_names_are_not_taken_for_json(tmp_path):
    path = tmp_path / "sql_export.csv"
    path.write_text("[time],[flow]\n2024-01-01 00:00:00,1.5\n2024-01-01 00:00:01,1.75\n")
    assert load_sensor_csv(path).sensors == ["[flow]"]


def test_json_array_is_refused(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text('[{"a": 1}, {"a": 2}]\n')
    with pytest.raises(DataError, match="looks like JSON, not CSV"):
        load_sensor_csv(path)


def test_a_file_too_large_for_the_free_memory_is_refused_before_it_is_read_with_the_figures():
    from pumpfl_gui.core.csv_text import READ_BYTES_FACTOR, memory_problem

    # 2,002,000 rows x 52 sensors: a 659 MB export took 4.19 GB to read (pumpfl data check).
    said = memory_problem(659_000_000, 3_000_000_000, "historian.csv")
    assert said.startswith("historian.csv is 0.66 GB; reading it takes about 4.6 GB of memory")
    assert "this computer has 3.0 GB free" in said
    assert memory_problem(659_000_000, int(659_000_000 * READ_BYTES_FACTOR), "historian.csv") is None
