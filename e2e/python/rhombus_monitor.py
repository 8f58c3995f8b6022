"""
Rhombus-style WebSocket event monitor, written the way the vendor's own
sample is (seed 000): websocket-client + requests, a hand-rolled STOMP
frame builder and the vendor's naive parser, a heart-beat thread.

Only the hosts differ: they come from the environment.
    HERALD_API  http://127.0.0.1:8080   (vendor: https://api2.rhombussystems.com)
    HERALD_WS   ws://127.0.0.1:8080     (vendor: wss://ws.rhombussystems.com:8443)
    RHOMBUS_API_KEY
Each event is printed as one JSON line on stdout.
"""

import json
import os
import sys
import threading

import requests
import websocket

API_TOKEN = os.environ["RHOMBUS_API_KEY"]
API_BASE = os.environ.get("HERALD_API", "http://127.0.0.1:8080")
WS_BASE = os.environ.get("HERALD_WS", "ws://127.0.0.1:8080")
WS_PATH = "/websocket"
HEARTBEAT_INTERVAL = 10  # seconds


def get_org_uuid(api_token):
    """Fetch the organization UUID from the REST API."""
    resp = requests.post(
        f"{API_BASE}/api/org/getOrgV2",
        headers={"x-auth-apikey": api_token, "Content-Type": "application/json"},
        json={},
    )
    resp.raise_for_status()
    return resp.json()["org"]["uuid"]


def build_stomp_frame(command, headers=None, body=""):
    """Construct a STOMP 1.2 protocol frame."""
    frame = command + "\n"
    for key, value in (headers or {}).items():
        frame += f"{key}:{value}\n"
    frame += "\n" + body + "\x00"
    return frame


def parse_stomp_frame(raw):
    """Parse a raw WebSocket message into a STOMP frame dict."""
    raw = raw.lstrip("\n\r")
    if not raw or raw == "\x00":
        return None  # Heartbeat

    raw = raw.rstrip("\x00")
    parts = raw.split("\n\n", 1)
    lines = parts[0].split("\n")
    command = lines[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key] = value
    body = parts[1] if len(parts) > 1 else ""
    return {"command": command, "headers": headers, "body": body}


def monitor_events(api_token, org_uuid, on_event):
    """Connect, subscribe to the org's change topic and stream events."""
    url = f"{WS_BASE}{WS_PATH}?x-auth-scheme=api-token"
    headers = {"x-auth-apikey": api_token}

    ws = websocket.create_connection(url, header=headers, timeout=10)

    ws.send(build_stomp_frame("CONNECT", {
        "accept-version": "1.2",
        "heart-beat": "10000,10000",
    }))
    response = parse_stomp_frame(ws.recv())
    if not response or response["command"] != "CONNECTED":
        raise ConnectionError("STOMP handshake failed")
    print(json.dumps({"connected": response["headers"]}), flush=True)

    ws.send(build_stomp_frame("SUBSCRIBE", {
        "id": "sub-0",
        "destination": f"/topic/change/{org_uuid}",
    }))

    stop_event = threading.Event()

    def heartbeat_sender():
        while not stop_event.is_set():
            try:
                ws.send("\n")
            except Exception:
                break
            stop_event.wait(HEARTBEAT_INTERVAL)

    hb_thread = threading.Thread(target=heartbeat_sender, daemon=True)
    hb_thread.start()

    try:
        while True:
            raw = ws.recv()
            frame = parse_stomp_frame(raw)
            if frame is None:
                continue  # Heartbeat
            if frame["command"] != "MESSAGE":
                continue
            payload = json.loads(frame["body"])
            on_event(payload, frame["headers"])
    finally:
        stop_event.set()
        hb_thread.join(timeout=2)
        try:
            ws.send(build_stomp_frame("DISCONNECT"))
            ws.close()
        except Exception:
            pass


def main():
    org_uuid = get_org_uuid(API_TOKEN)
    print(json.dumps({"org": org_uuid}), flush=True)

    def handle_event(payload, headers):
        print(json.dumps({"event": payload, "headers": headers}), flush=True)

    try:
        monitor_events(API_TOKEN, org_uuid, handle_event)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
