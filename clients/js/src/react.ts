/**
 * React bindings for the Eddy client (`eddy-client/react`):
 *
 *   <EddyProvider client={eddy}> ... </EddyProvider>
 *   useChannel("chat:lobby", (event, data, msg) => ...)   // subscribe while mounted
 *   usePresence("chat:lobby")                              // the members, kept current
 *
 * Components that use the same channel share one subscription, which ends
 * when the last of them unmounts. `react` is a peer dependency (18 or 19).
 */
import { createContext, createElement, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import type { Eddy } from "./client.js";
import type { Subscription, SubscriptionState } from "./subscription.js";
import type { Member, Message } from "./types.js";

const EddyContext = createContext<Eddy | null>(null);

export interface EddyProviderProps {
  /** The client the hooks below use; the provider does not close it. */
  client: Eddy;
  children?: ReactNode;
}

/** Makes `client` available to useEddy, useChannel and usePresence below it. */
export function EddyProvider({ client, children }: EddyProviderProps) {
  return createElement(EddyContext.Provider, { value: client }, children);
}

/** The client of the nearest EddyProvider. */
export function useEddy(): Eddy {
  const client = useContext(EddyContext);
  if (!client) throw new Error("eddy-client/react: useEddy, useChannel and usePresence need an <EddyProvider client={...}> above them");
  return client;
}

// How many mounted hooks use each channel of each client: the shared
// subscription ends only when the last one unmounts.
const users = new WeakMap<Eddy, Map<string, number>>();

function acquire(client: Eddy, channel: string): Subscription {
  let counts = users.get(client);
  if (!counts) users.set(client, (counts = new Map()));
  counts.set(channel, (counts.get(channel) ?? 0) + 1);
  return client.subscribe(channel);
}

function release(client: Eddy, channel: string, sub: Subscription): void {
  const counts = users.get(client);
  const n = (counts?.get(channel) ?? 1) - 1;
  if (n > 0) {
    counts!.set(channel, n);
    return;
  }
  counts?.delete(channel);
  void sub.unsubscribe().catch(() => {});
}

export type ChannelHandler = (event: string, data: any, msg: Message) => void;

export interface ChannelState {
  /** The shared subscription (null before the first render's effect ran). */
  subscription: Subscription | null;
  /** subscribing, subscribed or unsubscribed. */
  state: SubscriptionState | "idle";
  /** False after a reconnect whose missed messages could not be recovered: reload your data. */
  recovered: boolean;
  /** Publishes on the channel (the token's publish claim must allow it). */
  publish(event: string, data?: unknown): Promise<{ id: string }>;
}

/**
 * Subscribes to `channel` while the component is mounted and calls `handler`
 * for every message. The latest handler is always used, so it may close over
 * state without resubscribing.
 */
export function useChannel(channel: string, handler?: ChannelHandler): ChannelState {
  const client = useEddy();
  const handlerRef = useRef(handler);
  handlerRef.current = handler;
  const [sub, setSub] = useState<Subscription | null>(null);
  const [state, setState] = useState<SubscriptionState | "idle">("idle");
  const [recovered, setRecovered] = useState(true);
  useEffect(() => {
    const s = acquire(client, channel);
    setSub(s);
    setState(s.state);
    const offs = [
      s.on("*", (event: string, data: any, msg: Message) => handlerRef.current?.(event, data, msg)),
      s.on("subscribed", (ev) => {
        setState("subscribed");
        setRecovered(!ev.resubscribed || ev.recovered);
      }),
      s.on("unsubscribed", () => setState("unsubscribed")),
    ];
    return () => {
      for (const off of offs) off();
      release(client, channel, s);
    };
  }, [client, channel]);
  return {
    subscription: sub,
    state,
    recovered,
    publish: (event, data) => client.publish(channel, event, data),
  };
}

/**
 * The members of a presence channel, kept current from join and leave events
 * (the namespace needs presence and join_leave on). One entry per connection.
 */
export function usePresence(channel: string): Member[] {
  const client = useEddy();
  const [members, setMembers] = useState<Member[]>([]);
  useEffect(() => {
    const s = acquire(client, channel);
    let live = true;
    // Events that arrive while the full list is being fetched are replayed on it.
    let pending: { action: string; member: Member }[] | null = null;
    const apply = (list: Member[], action: string, m: Member): Member[] => {
      const rest = list.filter((x) => x.conn !== m.conn);
      return action === "join" ? [...rest, m] : rest;
    };
    const load = () => {
      pending = [];
      s.presence().then(
        (all) => {
          if (!live) return;
          let list = all;
          for (const ev of pending ?? []) list = apply(list, ev.action, ev.member);
          pending = null;
          setMembers(list);
        },
        () => {
          pending = null;
        },
      );
    };
    const offs = [
      s.on("subscribed", load),
      s.on("presence", (ev) => {
        if (pending) pending.push(ev);
        else setMembers((list) => apply(list, ev.action, ev.member));
      }),
    ];
    if (s.state === "subscribed") load();
    return () => {
      live = false;
      for (const off of offs) off();
      release(client, channel, s);
    };
  }, [client, channel]);
  return members;
}
