"""The readers' sandbox: a script run through a fork server ends as it would in a process of its
own -- the same output, exit status and words for a crash or a time-out -- in a new process for
every run, and a server that dies is replaced without losing the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog.extract import sandbox

pytestmark = pytest.mark.skipif(not sandbox.FORK_SERVER, reason="fork servers are used on Linux only")

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, time
    what = sys.argv[1]
    if what == "echo":
        data = sys.stdin.buffer.read()
        sys.stdout.buffer.write(json.dumps({"argv": sys.argv[1:], "env": os.environ.get("SANDBOX_TEST")}).encode())
        sys.stdout.buffer.write(b"\\n" + data)
    elif what == "pid":
        print(os.getpid(), os.getppid(), len(os.listdir("/proc/self/task")))
    elif what == "mark":
        import json as preloaded
        print(getattr(preloaded, "_touched_by_an_earlier_file", False))
        preloaded._touched_by_an_earlier_file = True
    elif what == "crash":
        os.kill(os.getpid(), int(sys.argv[2]))
    elif what == "exit":
        sys.exit(int(sys.argv[2]))
    elif what == "raise":
        raise ValueError("a reader's bug")
    elif what == "sleep":
        time.sleep(30)
    elif what == "meet":  # make one file, wait for the other: two runs that meet
        open(sys.argv[2], "w").close()
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.01)
        print(os.getppid())
    elif what == "big":
        sys.stdout.write("x" * int(sys.argv[2]))
    elif what == "interrupt":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 5)
    elif what == "c-out":  # a C library's output, in its stdio buffer at exit
        import ctypes
        ctypes.CDLL(None).printf(b"[from C]")
        sys.stdout.write("{}")
    elif what == "where":
        print(os.getcwd(), oct(os.umask(0o22)))
    elif what == "size":  # the address space this process starts with, in KiB
        print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmSize")))
    elif what == "linger":  # say who it is, then take its time
        with open(sys.argv[2], "w") as out:
            out.write(f"{os.getpid()} {os.getppid()}")
        time.sleep(30)
    """
)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "reader.py"
    path.write_text(SCRIPT)
    return path


def _both(script: Path, *args: str, seconds: int = 20, data: bytes | None = None, env: dict[str, str] | None = None):
    """The outcome of the script through the fork server and in a process of its own."""
    served = sandbox.run_script(
        script,
        list(args),
        preload=("json",),
        seconds=seconds,
        reader="test reader",
        nothing="nothing",
        input=data,
        env=env,
    )
    alone = sandbox.run_child(
        [sys.executable, "-I", str(script), *args],
        seconds=seconds,
        reader="test reader",
        nothing="nothing",
        input=data,
        env=env,
    )
    return served, alone


def _same(served, alone) -> tuple[int | None, bytes | None, list[str]]:
    (done_s, why_s), (done_a, why_a) = served, alone
    assert why_s == why_a
    assert (done_s is None) == (done_a is None)
    if done_s is None:
        return None, None, why_s
    assert (done_s.returncode, done_s.stdout) == (done_a.returncode, done_a.stdout)
    return done_s.returncode, done_s.stdout, why_s


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(st.none(), st.binary(max_size=2048), st.binary(min_size=200_000, max_size=300_000)),
    words=st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20), max_size=4),
)
def test_a_served_run_gives_the_input_arguments_and_output_of_a_run_alone(
    script: Path, data: bytes | None, words: list[str]
) -> None:
    env = {**os.environ, "SANDBOX_TEST": "on"}
    returncode, output, why = _same(*_both(script, "echo", *words, data=data, env=env))
    assert returncode == 0 and why == []
    assert output is not None
    head, _, echoed = output.partition(b"\n")
    assert echoed == (data or b"")
    assert head.decode() == f'{{"argv": {__import__("json").dumps(["echo", *words])}, "env": "on"}}'


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("crash", str(int(signal.SIGSEGV))), "the test reader crashed (SIGSEGV) on this file; nothing"),
        (("crash", str(int(signal.SIGKILL))), "the test reader was killed (out of memory?) on this file; nothing"),
        (("crash", str(int(signal.SIGXCPU))), "the test reader used up its CPU time limit on this file; nothing"),
    ],
)
def test_a_reader_ended_by_a_signal_is_said_to_be_so_in_the_same_words(
    script: Path, args: tuple[str, ...], said: str
) -> None:
    assert _same(*_both(script, *args)) == (None, None, [said])


def test_a_reader_past_its_time_is_stopped_and_said_to_be(script: Path) -> None:
    served = sandbox.run_script(
        script, ["sleep"], preload=(), seconds=1, reader="test reader", nothing="nothing", input=None
    )
    assert served == (None, ["the test reader did not finish within 1 s and was stopped; nothing"])
    # ... and the server goes on serving
    returncode, _, _ = _same(*_both(script, "exit", "0"))
    assert returncode == 0


@pytest.mark.parametrize(("args", "code"), [(("exit", "3"), 3), (("raise",), 1), (("big", "5000000"), 0)])
def test_exit_statuses_and_large_outputs_are_those_of_a_run_alone(
    script: Path, args: tuple[str, ...], code: int
) -> None:
    returncode, output, why = _same(*_both(script, *args))
    assert (returncode, why) == (code, [])
    if args[0] == "big":
        assert output == b"x" * 5_000_000


def test_every_file_is_read_in_a_new_process_that_nothing_earlier_touched(script: Path) -> None:
    seen = []
    for _ in range(3):
        done, why = sandbox.run_script(
            script, ["pid"], preload=("numpy",), seconds=20, reader="test reader", nothing="nothing"
        )
        assert done is not None and why == []
        pid, parent, threads = map(int, done.stdout.split())
        seen.append((pid, parent, threads))
    assert len({pid for pid, _, _ in seen}) == 3  # a new process each time
    assert len({parent for _, parent, _ in seen}) == 1 and seen[0][1] != os.getpid()  # forked by the server
    assert all(threads == 1 for _, _, threads in seen)
    marks = []
    for _ in range(2):
        done, _ = sandbox.run_script(
            script, ["mark"], preload=("json",), seconds=20, reader="test reader", nothing="nothing"
        )
        assert done is not None
        marks.append(done.stdout.strip())
    assert marks == [b"False", b"False"]  # a preloaded module as the server left it, every time


def test_a_server_that_died_is_replaced_and_the_run_is_not_lost(script: Path) -> None:
    first, _ = sandbox.run_script(script, ["pid"], preload=("json",), seconds=20, reader="r", nothing="n")
    assert first is not None
    server = sandbox._idle[("json",)][0]
    server.process.kill()
    server.process.wait()
    again, why = sandbox.run_script(script, ["pid"], preload=("json",), seconds=20, reader="r", nothing="n")
    assert again is not None and why == []
    assert int(again.stdout.split()[1]) != int(first.stdout.split()[1])  # a new server


def test_a_server_dying_under_the_command_line_tools_sigpipe_does_not_end_the_command(
    script: Path, tmp_path: Path
) -> None:
    """The command-line tool dies of SIGPIPE, as Unix tools do; a request written to a server
    that has just died must be an error it recovers from, never that signal."""
    program = textwrap.dedent(
        f"""
        import signal, sys
        from pathlib import Path
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        from evidence_catalog.extract import sandbox
        script = Path({str(script)!r})
        done, _ = sandbox.run_script(script, ["exit", "0"], preload=("json",), seconds=20, reader="r", nothing="n")
        assert done is not None
        server = sandbox._idle[("json",)][0]
        server.process.kill()
        server.process.wait()
        server.process.poll = lambda: None  # not noticed before the request is written
        done, why = sandbox.run_script(
            script, ["echo"], preload=("json",), seconds=20, reader="r", nothing="n", input=b"y" * 1_000_000
        )
        assert done is not None and why == [] and done.stdout.endswith(b"y" * 1_000_000), why
        print("survived")
        """
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout.strip()) == (0, "survived"), result.stderr


def test_a_forked_process_starts_its_own_server_and_leaves_its_parents_alone(script: Path) -> None:
    before, _ = sandbox.run_script(script, ["pid"], preload=("json",), seconds=20, reader="r", nothing="n")
    assert before is not None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover -- the child reports through the pipe
        code = 1
        try:
            done, _ = sandbox.run_script(script, ["pid"], preload=("json",), seconds=20, reader="r", nothing="n")
            os.write(write_end, done.stdout if done is not None else b"none")
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        child_said = stream.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_said != b"none"
    assert int(child_said.split()[1]) != int(before.stdout.split()[1])  # its own server
    after, _ = sandbox.run_script(script, ["pid"], preload=("json",), seconds=20, reader="r", nothing="n")
    assert after is not None and int(after.stdout.split()[1]) == int(before.stdout.split()[1])  # ours still serves


def test_threads_reading_at_once_each_get_a_server(script: Path, tmp_path: Path) -> None:
    """Two runs that each wait for the other finish only if they run at the same time."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    outcomes: dict[str, object] = {}

    def run(name: str, mine: str, theirs: str) -> None:
        outcomes[name] = sandbox.run_script(
            script, ["meet", mine, theirs], preload=("json",), seconds=20, reader="r", nothing="n"
        )

    threads = [threading.Thread(target=run, args=("a", a, b)), threading.Thread(target=run, args=("b", b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done_a, why_a = outcomes["a"]  # type: ignore[misc]
    done_b, why_b = outcomes["b"]  # type: ignore[misc]
    assert why_a == why_b == []
    assert done_a.stdout != done_b.stdout  # two servers


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("interrupt",), ["the test reader crashed (SIGINT) on this file; nothing"]),
        (("exit", str(2**40)), []),
        (("exit", str(2**70)), []),
        (("exit", str(-(2**63))), []),
    ],
)
def test_an_interrupted_reader_and_odd_exit_statuses_end_as_in_a_run_alone(
    script: Path, args: tuple[str, ...], said: list[str]
) -> None:
    """An uncaught KeyboardInterrupt ends an interpreter by SIGINT; an exit status past a C
    long is 255, else its low byte."""
    _, _, why = _same(*_both(script, *args))
    assert why == said


def test_what_a_c_library_left_in_its_stdio_buffer_is_output_as_in_a_run_alone(script: Path) -> None:
    """An interpreter's exit() flushes C's stdio buffers after its own: a decoder that printed
    to standard output makes the same report, valid or not, either way."""
    assert _same(*_both(script, "c-out"))[:2] == (0, b"{}[from C]")


def test_a_large_output_leaves_later_readers_the_same_address_space(script: Path) -> None:
    """The memory limit is on address space: what one file's reader said, however long, must
    not stay in the server, for every later file's reader to start with less."""

    def size() -> int:
        done, _ = sandbox.run_script(script, ["size"], preload=("json",), seconds=20, reader="r", nothing="n")
        assert done is not None
        return int(done.stdout)

    before = size()
    done, _ = sandbox.run_script(
        script, ["big", "100000000"], preload=("json",), seconds=60, reader="r", nothing="n", input=b"y" * 20_000_000
    )
    assert done is not None and len(done.stdout) == 100_000_000
    assert size() - before < 16 * 1024


def test_a_reader_dies_with_its_server(script: Path, tmp_path: Path) -> None:
    """A server killed mid-request (an interrupt, its thread gone, a time-out) takes the file's
    reader with it: no process goes on reading the file, or writing where the run that
    replaces it writes."""
    said = tmp_path / "said"
    first: list[int] = []

    def kill_the_server() -> None:
        while not said.exists() or not said.read_text():
            threading.Event().wait(0.01)
        pid, server = map(int, said.read_text().split())
        first.append(pid)
        os.kill(server, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_server)
    killer.start()
    done, why = sandbox.run_script(script, ["linger", str(said)], preload=("json",), seconds=2, reader="r", nothing="n")
    killer.join()
    assert done is None and why == ["the r did not finish within 2 s and was stopped; n"]  # the run alone
    _assert_ends(first[0], "the reader outlived its server")


def _assert_ends(pid: int, failure: str) -> None:
    """Fail with *failure* unless the process *pid* is gone (or a zombie) within 5 s."""
    for _ in range(500):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except FileNotFoundError:
            return
        threading.Event().wait(0.01)
    os.kill(pid, signal.SIGKILL)
    pytest.fail(failure)


def test_a_reader_runs_in_the_callers_directory_and_umask(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the caller is now, and the mode its files get, not those of when the server
    started (the perceptual hasher writes keyframes)."""
    assert _same(*_both(script, "exit", "0"))[0] == 0  # a server started here
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o077)
    try:
        _, output, _ = _same(*_both(script, "where"))
    finally:
        os.umask(old)
    assert output == f"{tmp_path} 0o77\n".encode()


@pytest.mark.no_postgresql_pass  # no catalog's database in it
def test_a_script_named_relative_to_the_callers_directory_is_the_one_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -I reader.py`` reads the file where the caller is now, not where the server
    started: the server's compiled copy is of the file the child would run."""
    for name, code in (("first", 3), ("second", 4)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "reader.py").write_text(f"import sys\nsys.exit({code})\n")
    codes = []
    for name in ("first", "second"):
        monkeypatch.chdir(tmp_path / name)  # the server starts in the first
        done, _ = sandbox.run_script(
            Path("reader.py"), [], preload=("json", "string"), seconds=20, reader="r", nothing="n"
        )
        assert done is not None
        codes.append(done.returncode)
    assert codes == [3, 4]


def test_a_cancelled_request_stops_its_reader_and_is_never_run_alone(script: Path, tmp_path: Path) -> None:
    """What a thread pool does when its caller is interrupted: the reader a worker waits on is
    killed with its server, the worker hears it at once, and nothing runs the script again."""
    said = tmp_path / "said"
    outcome: list[object] = []
    cancellation = sandbox.Cancellation()

    def worker() -> None:
        with cancellation.applied():
            for args in (["linger", str(said)], ["exit", "0"]):  # and a later one never starts
                try:
                    done = sandbox.run_script(script, args, preload=("json",), seconds=60, reader="r", nothing="n")
                    outcome.append(done)
                except sandbox.RequestCancelledError as exc:
                    outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    while not said.exists() or not said.read_text():
        threading.Event().wait(0.01)
    reader = int(said.read_text().split()[0])
    sandbox.Cancellation().cancel()  # another pool's: this request runs on
    assert thread.is_alive()
    cancellation.cancel()
    thread.join(10)
    assert not thread.is_alive() and [type(o) for o in outcome] == [sandbox.RequestCancelledError] * 2
    assert said.read_text().split()[0] == str(reader)  # not run again in a process of its own
    _assert_ends(reader, "the reader outlived its cancelled request")


def test_a_script_changed_between_files_runs_as_changed(script: Path) -> None:
    """The server compiles each script once, and again whenever its file changes."""
    first, _ = sandbox.run_script(script, ["exit", "3"], preload=("json",), seconds=20, reader="r", nothing="n")
    script.write_text(SCRIPT.replace("sys.exit(int(sys.argv[2]))", "sys.exit(int(sys.argv[2]) + 1)"))
    second, _ = sandbox.run_script(script, ["exit", "3"], preload=("json",), seconds=20, reader="r", nothing="n")
    script.write_text("import sys\nsys.exit(7)\n")
    third, _ = sandbox.run_script(script, ["exit", "3"], preload=("json",), seconds=20, reader="r", nothing="n")
    script.write_text("this is not Python(\n")
    broken = _both(script, "exit", "3")
    assert first is not None and second is not None and third is not None
    assert (first.returncode, second.returncode, third.returncode) == (3, 4, 7)
    assert _same(*broken)[0] == 1


@pytest.mark.no_postgresql_pass  # no catalog's database in it
def test_a_script_rewritten_with_its_size_and_time_kept_runs_as_rewritten(script: Path) -> None:
    """Two writes within one tick of the file system's clock (or a copy that keeps the time)
    leave a file's size and time as they were: the server still runs what the file holds."""
    first, _ = sandbox.run_script(script, ["exit", "3"], preload=("json",), seconds=20, reader="r", nothing="n")
    before = script.stat()
    script.write_text(SCRIPT.replace('elif what == "exit":', 'elif what == "quit":'))  # the same size
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert script.stat().st_size == before.st_size
    second, _ = sandbox.run_script(script, ["exit", "3"], preload=("json",), seconds=20, reader="r", nothing="n")
    assert first is not None and second is not None
    assert (first.returncode, second.returncode) == (3, 0)


@pytest.mark.no_postgresql_pass  # no catalog's database in it
def test_a_cancel_never_stops_a_request_another_thread_made_since(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request a cancel finds may end, and its server go to another thread's request, before
    the cancel reaches that server: the other thread's request runs on."""
    sandbox.run_script(script, ["exit", "0"], preload=("json",), seconds=20, reader="r", nothing="n")  # a server
    go, a_said, b_said, b_go = (tmp_path / name for name in ("go", "a", "b", "b-go"))
    outcome: dict[str, object] = {}

    def run(name: str, *args: str) -> None:
        try:
            outcome[name] = sandbox.run_script(script, args, preload=("json",), seconds=20, reader="r", nothing="n")
        except sandbox.RequestCancelledError as exc:
            outcome[name] = exc

    cancellation = sandbox.Cancellation()

    def run_cancellable(name: str, *args: str) -> None:
        with cancellation.applied():
            run(name, *args)

    a = threading.Thread(target=run_cancellable, args=("a", "meet", str(a_said), str(go)))
    b = threading.Thread(target=run, args=("b", "meet", str(b_said), str(b_go)))
    cancel = sandbox._Server.cancel

    def late(server: object) -> None:  # what the cancel found ends first; the other request starts
        go.touch()
        a.join(0.5)
        b.start()
        for _ in range(50):
            if b_said.exists():
                break
            threading.Event().wait(0.01)
        cancel(server)  # type: ignore[arg-type]

    monkeypatch.setattr(sandbox._Server, "cancel", late)
    a.start()
    while not a_said.exists():
        threading.Event().wait(0.01)
    cancellation.cancel()
    b_go.touch()
    a.join(10)
    b.join(10)
    assert isinstance(outcome["a"], sandbox.RequestCancelledError)
    done, _ = outcome["b"]  # type: ignore[misc]
    assert isinstance(done, subprocess.CompletedProcess) and done.returncode == 0


@pytest.mark.no_postgresql_pass
def test_a_server_outlives_the_thread_that_first_needed_it(script: Path) -> None:
    """A pool's threads end with each add or analyze; its servers stay for the next one (Linux
    kills a server with the thread that started it: one long-lived thread starts them all)."""
    parents: list[str] = []

    def run() -> None:
        done, _ = sandbox.run_script(script, ["pid"], preload=("json", "string"), seconds=20, reader="r", nothing="n")
        assert done is not None
        parents.append(done.stdout.split()[1].decode())

    for _ in range(2):
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    assert len(parents) == 2 and parents[0] == parents[1]


@pytest.mark.no_postgresql_pass  # no catalog's database in it
def test_a_caller_that_ignores_sigint_gets_a_reader_that_ignores_it_as_one_run_alone(script: Path) -> None:
    """A command run in the background by a shell without job control starts with SIGINT
    ignored, and so does every interpreter it starts: a served reader too."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        returncode, _, why = _same(*_both(script, "interrupt", "0.2"))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (returncode, why) == (0, [])
