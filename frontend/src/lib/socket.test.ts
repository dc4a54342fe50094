// The socket URL with its access token, and the reconnection after the server closed a
// session whose token expired (4001): renew, then reconnect at once with the new token.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LiveSocket, socketUrl, TOKEN_EXPIRED } from "./socket";

describe("socketUrl", () => {
  it("is the page's own server, ws or wss", () => {
    expect(socketUrl({ protocol: "http:", host: "127.0.0.1:8080" })).toBe("ws://127.0.0.1:8080/ws");
    expect(socketUrl({ protocol: "https:", host: "pulse.example" }, null)).toBe("wss://pulse.example/ws");
  });

  it("carries the access token as a query parameter, encoded", () => {
    expect(socketUrl({ protocol: "https:", host: "pulse.example" }, "a.b.c")).toBe("wss://pulse.example/ws?access_token=a.b.c");
    expect(socketUrl({ protocol: "http:", host: "h" }, "x+y/z=")).toBe("ws://h/ws?access_token=x%2By%2Fz%3D");
  });
});

/** Just enough of a browser WebSocket to drive `LiveSocket`. */
class FakeSocket {
  static readonly OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(data);
  }
  open() {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }
  close(code = 1005) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

describe("LiveSocket with tokens", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  function start(renew: () => Promise<unknown>) {
    let token = "t1";
    const states: string[] = [];
    const socket = new LiveSocket(
      async () => socketUrl({ protocol: "http:", host: "h" }, token),
      ["posts"],
      () => {},
      (s) => states.push(s.status),
      async () => {
        await renew();
        token = "t2";
      },
    );
    socket.start({});
    return { socket, states };
  }

  it("a 4001 close renews the token and reconnects at once with it", async () => {
    const renew = vi.fn(async () => {});
    const { socket, states } = start(renew);
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all.map((s) => s.url)).toEqual(["ws://h/ws?access_token=t1"]);
    FakeSocket.all[0].open();
    expect(JSON.parse(FakeSocket.all[0].sent[0])).toMatchObject({ type: "subscribe", topics: ["posts"] });
    FakeSocket.all[0].close(TOKEN_EXPIRED);
    await vi.advanceTimersByTimeAsync(0);
    expect(renew).toHaveBeenCalledTimes(1);
    expect(FakeSocket.all.map((s) => s.url)).toEqual(["ws://h/ws?access_token=t1", "ws://h/ws?access_token=t2"]);
    expect(states).not.toContain("reconnecting");
    socket.stop();
  });

  it("other closes back off and take the token again", async () => {
    const renew = vi.fn(async () => {});
    const { socket, states } = start(renew);
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.all[0].open();
    FakeSocket.all[0].close(1006);
    expect(states.at(-1)).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(1000);
    expect(renew).not.toHaveBeenCalled();
    expect(FakeSocket.all.map((s) => s.url)).toEqual(["ws://h/ws?access_token=t1", "ws://h/ws?access_token=t1"]);
    socket.stop();
  });

  it("a failed renewal backs off instead of reconnecting", async () => {
    const { socket, states } = start(async () => {
      throw new Error("refused");
    });
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.all[0].open();
    FakeSocket.all[0].close(TOKEN_EXPIRED);
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all).toHaveLength(1);
    expect(states.at(-1)).toBe("reconnecting");
    socket.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it("stopped while the URL was pending, it opens nothing", async () => {
    const { socket } = start(async () => {});
    socket.stop();
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all).toHaveLength(0);
  });
});
