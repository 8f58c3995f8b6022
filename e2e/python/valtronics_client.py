"""A channels-dialect client written like the Valtronics doc's Python example
(seed 002): websockets, an auth message answered by auth_response, then
subscriptions with their filters nested under "filters". Pointed at herald
by HERALD_WS (the only change from the doc's client); the token comes from
VALTRONICS_TOKEN. It prints every message it receives as one JSON line, and
"READY" on stderr once its three subscriptions are acknowledged."""

import asyncio
import json
import os
import sys

import websockets


class ValtronicsWebSocketClient:
    def __init__(self, url, token):
        self.url = url
        self.token = token
        self.websocket = None
        self.subscriptions = {}

    async def connect(self):
        self.websocket = await websockets.connect(self.url)
        await self.authenticate()

    async def authenticate(self):
        await self.send_message({"type": "auth", "token": self.token})
        # The doc's client reads the very next message and expects the answer.
        data = json.loads(await self.websocket.recv())
        if data.get("type") == "auth_response" and data.get("success"):
            print(json.dumps(data), flush=True)
        else:
            raise Exception("Authentication failed: %s" % json.dumps(data))

    async def subscribe(self, channel, filters=None):
        subscription = {"type": "subscribe", "channel": channel}
        if filters:
            subscription["filters"] = filters
        await self.send_message(subscription)
        self.subscriptions[channel] = filters

    async def send_message(self, message):
        await self.websocket.send(json.dumps(message))

    async def listen(self, count):
        acknowledged = 0
        received = 0
        while received < count:
            data = json.loads(await self.websocket.recv())
            print(json.dumps(data), flush=True)
            if data.get("type") == "subscribed":
                acknowledged += 1
                if acknowledged == len(self.subscriptions):
                    print("READY", file=sys.stderr, flush=True)
            elif data.get("type") != "pong":
                received += 1


async def main():
    client = ValtronicsWebSocketClient(os.environ["HERALD_WS"] + "/ws", os.environ["VALTRONICS_TOKEN"])
    await client.connect()
    await client.subscribe("telemetry", {"device_id": 1})
    await client.subscribe("alerts", {"severity": ["critical", "warning"]})
    await client.subscribe("devices")
    await client.listen(int(os.environ.get("COUNT", "3")))
    await client.websocket.close()


asyncio.run(main())
