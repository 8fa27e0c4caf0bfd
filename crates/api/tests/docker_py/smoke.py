"""docker-py (the Docker SDK for Python) against strata daemon: what its users call, with the
fields it indexes. Run by tests/docker_py.rs with the socket as argument; exits non-zero (an
assertion) on the first difference."""
import sys

import docker

c = docker.DockerClient(base_url="unix://" + sys.argv[1])
assert c.ping() is True
assert c.version()["ApiVersion"] == "1.47"
info = c.info()
assert info["Driver"] in ("overlay2", "vfs"), info["Driver"]

assert any("bb:latest" in i.tags for i in c.images.list()), c.images.list()
assert c.containers.run("bb", ["echo", "hi"], remove=True, network_mode="none") == b"hi\n"

ct = c.containers.run("bb", ["sh", "-c", "echo out; echo err >&2; exit 3"],
                      detach=True, network_mode="none")
assert ct.wait()["StatusCode"] == 3
assert ct.logs(stdout=True, stderr=False) == b"out\n"
assert ct.logs(stdout=False, stderr=True) == b"err\n"
ct.reload()
assert (ct.status, ct.attrs["State"]["ExitCode"]) == ("exited", 3), ct.attrs["State"]
assert ct.attrs["GraphDriver"]["Data"]["UpperDir"].endswith("/diff")
assert ct.diff() == [] or ct.diff() is None, ct.diff()
image = ct.commit(repository="bb2", tag="v1", message="from docker-py")
assert image.history()[0]["Comment"] == "from docker-py", image.history()

live = c.containers.run("bb", ["sleep", "30"], detach=True, network_mode="none")
result = live.exec_run(["sh", "-c", "echo e; exit 4"])
assert (result.exit_code, result.output) == (4, b"e\n"), result
assert live.top()["Titles"][-1] == "CMD", live.top()
live.remove(force=True)
ct.remove()
assert c.containers.list(all=True) == []

volume = c.volumes.create("pyvol")
assert "pyvol" in [v.name for v in c.volumes.list()]
volume.remove()
assert set(c.df()) >= {"Images", "Containers", "Volumes", "LayersSize"}, c.df().keys()

saved = b"".join(c.images.get("bb").save())
assert [i.tags for i in c.images.load(saved)] == [["bb:latest"]]
try:
    c.containers.get("nosuch")
    raise AssertionError("a missing container was found")
except docker.errors.NotFound:
    pass
print("docker-py: all checks passed")
