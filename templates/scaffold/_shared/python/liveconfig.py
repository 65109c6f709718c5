"""Live configuration: the workload's ConfigMap, kept current while the
process runs, so a config change needs no restart.

    live = LiveConfig(logger=logger, check=check_config)
    live.start()                      # a background thread; returns at once
    greeting = live.get("GREETING", "Hello")
    live.on_change(lambda values: ...)
    live.stop()

With `liveConfig: true` in skiff.yaml the chart sets SKIFF_CONFIG_MAP (the
ConfigMap's name), SKIFF_CONFIG_FILES (the same ConfigMap mounted as files) and
POD_NAMESPACE, and lets the pod get and watch that one ConfigMap. Without
SKIFF_CONFIG_MAP, live config is off and get() reads the environment.

The thread GETs the ConfigMap from the Kubernetes API, then watches it. When
the API fails it reads the mounted files (the kubelet refreshes them only
every minute or so) and retries with a backoff; with no API at all it polls
the files. Standard library only.
"""

import http.client
import json
import os
import socket
import ssl
import threading
from urllib.parse import quote, urlsplit

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
WATCH_TIMEOUT = 290  # seconds the API server keeps one watch open
WATCH_READ_TIMEOUT = 330.0  # a silent watch longer than this is dead
GET_TIMEOUT = 10.0  # connecting, and the whole GET


class _Gone(Exception):
    """The resourceVersion expired (410): list again."""


class _Stopped(Exception):
    """stop() was called."""


class _Quiet:
    def debug(self, msg, **attrs):
        pass

    info = warn = error = debug


class LiveConfig:
    """The workload's config: get() is safe from any thread.

    check(values) may raise ValueError (or any exception) to reject a
    snapshot; the last good values stay. Options left as None default from
    env: name SKIFF_CONFIG_MAP, namespace POD_NAMESPACE, directory
    SKIFF_CONFIG_FILES, api_url https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT,
    token_file and ca_file the service account's."""

    poll_interval = 2.0  # seconds between reads of the files when there is no API
    backoff_min, backoff_max = 1.0, 30.0  # seconds before retrying a failed API

    def __init__(self, logger=None, check=None, env=None, name=None, namespace=None, directory=None,
                 api_url=None, token_file=None, ca_file=None):
        self._env = os.environ if env is None else env
        env = self._env
        self._logger = logger or _Quiet()
        self._check = check
        self.name = env.get("SKIFF_CONFIG_MAP", "") if name is None else name
        self.namespace = (env.get("POD_NAMESPACE") or "default") if namespace is None else namespace
        self.directory = env.get("SKIFF_CONFIG_FILES", "") if directory is None else directory
        self.api_url = _in_cluster_url(env) if api_url is None else api_url.rstrip("/")
        self.token_file = token_file or SERVICE_ACCOUNT + "/token"
        self.ca_file = ca_file or SERVICE_ACCOUNT + "/ca.crt"

        self._lock = threading.Lock()
        self._values = None  # the accepted snapshot; None: read the env
        self._rejected = None  # the last rejected snapshot, not to warn twice
        self._files = None  # the mounted files when last read
        self._callbacks = []
        self._conn = None  # the connection in flight, for stop()
        self._logged = set()  # failure texts logged since the last success
        self._stopping = threading.Event()
        self._thread = None

    def get(self, key, default=None):
        """The current value of key: from the last accepted snapshot, or
        from the environment until one is accepted."""
        with self._lock:
            values = self._values
        if values is None:
            values = self._env
        value = values.get(key)
        return default if value is None else value

    def on_change(self, callback):
        """Calls callback(values), a dict of every key, after each accepted
        snapshot that differs from the one before."""
        with self._lock:
            self._callbacks.append(callback)

    def start(self):
        """Starts following the ConfigMap in a daemon thread; does nothing
        when live config is off."""
        if not self.name or self._thread is not None:
            return
        if self.api_url:
            target = self._follow_api
        elif self.directory:
            target = self._poll_files
        else:
            self._logger.warn("config watch failed", error="no Kubernetes API and no SKIFF_CONFIG_FILES to read")
            return
        self._logger.info("config watch started", configMap=self.name, namespace=self.namespace,
                          source=self.api_url or self.directory)
        self._thread = threading.Thread(target=target, name="liveconfig", daemon=True)
        self._thread.start()

    def stop(self, timeout=5.0):
        """Stops the thread: interrupts a backoff and a blocked read."""
        with self._lock:
            self._stopping.set()
            conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                # shutdown, not close: it wakes a recv blocked in the thread.
                socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    # The snapshot.

    def _offer(self, values, version):
        """Checks values and, if they differ, makes them current."""
        try:
            if self._check is not None:
                self._check(dict(values))
        except Exception as err:  # noqa: BLE001 - a bad check must not stop the thread
            if values != self._rejected:
                self._rejected = dict(values)
                self._logger.warn("config update rejected", reason=str(err), resourceVersion=version)
            return
        self._rejected = None
        with self._lock:
            old = self._values
            if old == values:
                return
            self._values = dict(values)
            callbacks = list(self._callbacks)
        old = old or {}
        changed = sorted(k for k in old.keys() | values.keys() if old.get(k) != values.get(k))
        self._logger.info("config updated", keys=changed, resourceVersion=version)
        for callback in callbacks:
            try:
                callback(dict(values))
            except Exception as err:  # noqa: BLE001 - one bad callback must not stop the others
                self._logger.error("config change callback failed", error=repr(err))

    def _read_files(self):
        """Offers the files in the directory as a snapshot: regular files
        (through symlinks) whose names do not start with a dot. Only when
        they are all there is, or when the kubelet changed them since the
        last read: the files lag the API by a minute or so, and must not
        undo what the API already said."""
        if not self.directory:
            return
        try:
            values = {}
            for entry in os.listdir(self.directory):
                path = os.path.join(self.directory, entry)
                if entry.startswith(".") or not os.path.isfile(path):
                    continue
                with open(path, encoding="utf-8", errors="replace") as f:
                    values[entry] = f.read()
        except OSError as err:  # e.g. the kubelet swapping ..data: the next read gets it
            self._warn_once(f"reading {self.directory}: {err}")
            return
        with self._lock:
            fresh = self._values is None or (self._files is not None and self._files != values)
            self._files = values
        if fresh:
            self._offer(values, version="files")

    def _poll_files(self):
        while True:
            self._read_files()
            if self._stopping.wait(self.poll_interval):
                return

    # The API.

    def _follow_api(self):
        delay = self.backoff_min
        while not self._stopping.is_set():
            try:
                version = self._load()
                delay = self.backoff_min
                self._logged.clear()
                self._watch(version)
            except _Gone:
                continue
            except _Stopped:
                return
            except Exception as err:  # noqa: BLE001 - every failure is retried
                if self._stopping.is_set():
                    return
                self._warn_once(str(err) or type(err).__name__)
                self._read_files()
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, self.backoff_max)

    def _load(self):
        """Step 1: GETs the ConfigMap, offers its data, returns its resourceVersion."""
        path = f"/api/v1/namespaces/{quote(self.namespace, safe='')}/configmaps/{quote(self.name, safe='')}"
        conn, resp = self._request(path, GET_TIMEOUT)
        try:
            body = resp.read()
        finally:
            self._close(conn)
        try:
            data, version = _configmap(json.loads(body))
        except ValueError:
            data = None
        if data is None:
            raise RuntimeError(f"GET {path}: the answer is not a ConfigMap")
        self._offer(data, version)
        return version

    def _watch(self, version):
        """Step 2: watches from version until the API says it expired
        (raises _Gone) or something fails (raises)."""
        bad_lines = 0
        while True:
            path = (f"/api/v1/namespaces/{quote(self.namespace, safe='')}/configmaps"
                    f"?fieldSelector=metadata.name%3D{quote(self.name, safe='')}&watch=true"
                    f"&resourceVersion={quote(version, safe='')}&allowWatchBookmarks=true"
                    f"&timeoutSeconds={WATCH_TIMEOUT}")
            conn, resp = self._request(path, WATCH_READ_TIMEOUT)
            try:
                while True:
                    try:
                        line = resp.readline()
                    except (OSError, http.client.HTTPException) as err:
                        raise RuntimeError(f"reading the watch: {err!r}") from None
                    if not line:
                        break  # the watch timed out: watch again
                    if not line.strip():
                        continue
                    event = _event(line)
                    if event is None:
                        bad_lines += 1
                        self._warn_once(f"the watch sent something that is not an event: {line[:200]!r}")
                        break
                    bad_lines = 0
                    version = self._apply(event, version)
            finally:
                self._close(conn)
            if bad_lines > 1 and self._stopping.wait(self.backoff_min):
                raise _Stopped()

    def _apply(self, event, version):
        """Acts on one watch event; returns the resourceVersion to go on from."""
        kind, obj = event.get("type"), event["object"]
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise RuntimeError(f"the watch failed: {obj.get('code')} {obj.get('message', '')}".rstrip())
        data, new_version = _configmap(obj)
        version = new_version or version
        if kind in ("ADDED", "MODIFIED"):
            if data is None:
                self._warn_once(f"the watch sent a {kind} event that is not a ConfigMap")
            else:
                self._offer(data, version)
        elif kind == "DELETED":
            self._logger.warn("config map deleted, keeping the last values", configMap=self.name)
        return version

    def _request(self, path, timeout):
        """GETs path; returns (connection, response) for a 2xx answer."""
        try:
            with open(self.token_file, encoding="utf-8") as f:  # re-read every time: it rotates
                token = f.read().strip()
        except OSError as err:
            raise RuntimeError(f"reading the service account token: {err}") from None
        url = urlsplit(self.api_url)
        if url.scheme == "https":
            try:
                context = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as err:
                raise RuntimeError(f"reading the CA {self.ca_file}: {err}") from None
            conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=GET_TIMEOUT, context=context)
        elif url.scheme == "http":
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=GET_TIMEOUT)
        else:
            raise ValueError(f"the API URL {self.api_url} is not http or https")
        try:
            try:
                conn.connect()
            except OSError as err:
                raise RuntimeError(f"connecting to {self.api_url}: {err}") from None
            with self._lock:
                if self._stopping.is_set():
                    raise _Stopped()
                self._conn = conn
            conn.sock.settimeout(timeout)
            conn.request("GET", url.path.rstrip("/") + path,
                         headers={"Authorization": "Bearer " + token, "Accept": "application/json"})
            resp = conn.getresponse()
            if resp.status == 410:
                raise _Gone()
            if not 200 <= resp.status < 300:
                raise RuntimeError(f"GET {path.split('?')[0]}: {resp.status} {resp.reason}{_status_message(resp)}")
        except BaseException:
            self._close(conn)
            raise
        return conn, resp

    def _close(self, conn):
        with self._lock:
            if self._conn is conn:
                self._conn = None
        conn.close()

    def _warn_once(self, text):
        if text not in self._logged:
            self._logged.add(text)
            self._logger.warn("config watch failed", error=text)


def _in_cluster_url(env):
    host = env.get("KUBERNETES_SERVICE_HOST")
    if not host:
        return ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return f"https://{host}:{env.get('KUBERNETES_SERVICE_PORT') or 443}"


def _configmap(obj):
    """(data, resourceVersion) of a ConfigMap object; data is None when it
    is not one."""
    if not isinstance(obj, dict):
        return None, ""
    meta = obj.get("metadata")
    version = meta.get("resourceVersion") if isinstance(meta, dict) else None
    version = version if isinstance(version, str) else ""
    data = obj.get("data")
    if data is None:
        return {}, version
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None, version
    return data, version


def _event(line):
    """The watch event in one line, or None if it is not one."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        return None
    return event


def _status_message(resp):
    """': message' from a Kubernetes Status body, or ''."""
    try:
        message = json.loads(resp.read(64 * 1024)).get("message")
    except Exception:  # noqa: BLE001 - the status line says enough
        return ""
    return f": {message}" if isinstance(message, str) and message else ""

