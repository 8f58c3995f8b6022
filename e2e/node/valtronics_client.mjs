// A channels-dialect client written like the Valtronics doc's JavaScript
// class (seed 002), under Node with the `ws` package: auth on open, then
// subscriptions with their filters spread at the top level of the message,
// dispatch on data.type. Pointed at herald by HERALD_WS; the token comes
// from VALTRONICS_TOKEN. Every message received is printed as one JSON line.
import WebSocket from 'ws';

class ValtronicsWebSocket {
  constructor(url, token) {
    this.url = url;
    this.token = token;
    this.ws = null;
    this.subscriptions = new Map();
  }

  connect() {
    this.ws = new WebSocket(this.url);
    this.ws.onopen = () => this.authenticate();
    this.ws.onmessage = (event) => this.handleMessage(JSON.parse(event.data));
    this.ws.onclose = () => process.exit(0);
    this.ws.onerror = (error) => {
      console.error('WebSocket error:', error.message);
      process.exit(1);
    };
  }

  authenticate() {
    this.send({ type: 'auth', token: this.token });
  }

  subscribe(channel, filters = {}) {
    this.send({ type: 'subscribe', channel: channel, ...filters });
    this.subscriptions.set(channel, filters);
  }

  unsubscribe(channel) {
    this.send({ type: 'unsubscribe', channel: channel });
    this.subscriptions.delete(channel);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
    }
  }

  handleMessage(data) {
    console.log(JSON.stringify(data));
    switch (data.type) {
      case 'auth_response':
        if (data.success) {
          this.subscribe('telemetry', { device_id: 1 });
          this.subscribe('alerts', { severity: ['critical', 'warning'] });
        }
        break;
      case 'subscribed':
      case 'telemetry_update':
      case 'alert':
      case 'device_status_update':
      case 'system_status_update':
      case 'pong':
        break;
      default:
        console.error('Unknown message type:', data.type);
    }
  }
}

const client = new ValtronicsWebSocket(process.env.HERALD_WS + '/ws', process.env.VALTRONICS_TOKEN);
client.connect();
