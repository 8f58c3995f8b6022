"""A client of herald's ess dialect written the way Milestone's
Events and State Python sample is (EventsAndStateWebSocketApiPython):
a token from the identity provider with requests, the WebSocket with
websockets' connect(..., extra_headers=...), commands that wait for their
reply while dropping pushes, and names resolved through the configuration
REST API with aiohttp.

Environment: HERALD_URL (http://host:port), ESS_USER, ESS_PASSWORD,
ESS_EVENTS (how many pushed events to print before exiting).
Every line on stdout is one JSON object; "ready" goes to stderr once the
subscription and the state are in place.
"""

import asyncio
import json
import os
import sys

import aiohttp
import requests
from websockets import connect

# Event types of the vendor's sample subscription.
MOTION_STARTED = "6eb95dd6-7ccc-4bce-99f8-af0d0b582d77"
MOTION_STOPPED = "6f55a7a7-d21c-4629-ac18-af1975e395a2"
RECORDING_STARTED = "4577f552-765a-438c-bc7d-e5ff1f754bc3"
RECORDING_STOPPED = "79a94f89-92de-4fca-8a43-5561d407423d"

FILTERS = [{
    "modifier": "include",
    "resourceTypes": ["cameras"],
    "sourceIds": ["*"],
    "eventTypes": [MOTION_STARTED, MOTION_STOPPED, RECORDING_STARTED, RECORDING_STOPPED],
}]


def out(**fields):
    print(json.dumps(fields), flush=True)


def fetch_token(base, user, password):
    body = f"grant_type=password&username={user}&password={password}&client_id=GrantValidatorClient"
    reply = requests.Session().request("POST", f"{base}/API/IDP/connect/token",
                                       headers={"Content-Type": "application/x-www-form-urlencoded"}, data=body)
    reply.raise_for_status()
    return reply.json()


class Commands:
    def __init__(self, ws):
        self.ws = ws
        self.last_id = 0

    async def send(self, command):
        self.last_id += 1
        command["commandId"] = self.last_id
        await self.ws.send(json.dumps(command))
        while True:  # drop whatever is not our reply, as the sample does
            reply = json.loads(await self.ws.recv())
            if reply.get("commandId") == self.last_id:
                break
        if not 200 <= reply["status"] <= 299:
            raise RuntimeError(f"{command['command']} failed. {reply['status']}: {reply['error']['errorText']}")
        return reply


names = {}


async def lookup(http, base, token, path, key):
    if (path, key) in names:
        return names[(path, key)]
    async with http.get(f"{base}/api/rest/v1/{path}", headers={"Authorization": f"Bearer {token}"}) as reply:
        value = "Unknown"
        if reply.status == 200:
            value = (await reply.json())["data"][key]
        names[(path, key)] = value
        return value


async def describe(http, base, token, event):
    d = {"id": event["id"], "type": event["type"], "source": event["source"], "time": event["time"],
         "source_name": await lookup(http, base, token, event["source"], "displayName"),
         "type_name": await lookup(http, base, token, f"eventTypes/{event['type']}", "displayName")}
    if "stategroupid" in event:
        d["state_group"] = await lookup(http, base, token, f"stateGroups/{event['stategroupid']}", "displayName")
        d["state"] = await lookup(http, base, token, f"eventTypes/{event['type']}", "state")
    return d


async def main():
    base = os.environ["HERALD_URL"].rstrip("/")
    grant = fetch_token(base, os.environ["ESS_USER"], os.environ["ESS_PASSWORD"])
    token = grant["access_token"]
    out(step="token", token_type=grant["token_type"], expires_in=grant["expires_in"])
    uri = "ws://" + base.split("//", 1)[1] + "/api/ws/events/v1/"
    wanted = int(os.environ.get("ESS_EVENTS", "1"))
    async with aiohttp.ClientSession() as http:
        async with connect(uri, extra_headers={"Authorization": f"Bearer {token}"}) as ws:
            commands = Commands(ws)
            session = await commands.send({"command": "startSession", "sessionId": "", "eventId": ""})
            out(step="session", status=session["status"], sessionId=session["sessionId"])
            sub = await commands.send({"command": "addSubscription", "filters": FILTERS})
            out(step="subscription", status=sub["status"], subscriptionId=sub["subscriptionId"])
            state = await commands.send({"command": "getState"})
            out(step="state", states=[await describe(http, base, token, s) for s in state["states"]])
            print("ready", file=sys.stderr, flush=True)
            seen = 0
            while seen < wanted:
                message = json.loads(await ws.recv())
                if "events" not in message:
                    raise RuntimeError(f"Unexpected message received: {message}")
                for event in message["events"]:
                    out(step="event", **await describe(http, base, token, event))
                    seen += 1


asyncio.run(main())
