import { createContext, createElement, useContext, useEffect, useRef, useState } from "react";
const EddyContext = createContext(null);
function EddyProvider({ client, children }) {
  return createElement(EddyContext.Provider, { value: client }, children);
}
function useEddy() {
  const client = useContext(EddyContext);
  if (!client) throw new Error("eddy-client/react: useEddy, useChannel and usePresence need an <EddyProvider client={...}> above them");
  return client;
}
const users = /* @__PURE__ */ new WeakMap();
function acquire(client, channel) {
  let counts = users.get(client);
  if (!counts) users.set(client, counts = /* @__PURE__ */ new Map());
  counts.set(channel, (counts.get(channel) ?? 0) + 1);
  return client.subscribe(channel);
}
function release(client, channel, sub) {
  const counts = users.get(client);
  const n = (counts?.get(channel) ?? 1) - 1;
  if (n > 0) {
    counts.set(channel, n);
    return;
  }
  counts?.delete(channel);
  void sub.unsubscribe().catch(() => {
  });
}
function useChannel(channel, handler) {
  const client = useEddy();
  const handlerRef = useRef(handler);
  handlerRef.current = handler;
  const [sub, setSub] = useState(null);
  const [state, setState] = useState("idle");
  const [recovered, setRecovered] = useState(true);
  useEffect(() => {
    const s = acquire(client, channel);
    setSub(s);
    setState(s.state);
    const offs = [
      s.on("*", (event, data, msg) => handlerRef.current?.(event, data, msg)),
      s.on("subscribed", (ev) => {
        setState("subscribed");
        setRecovered(!ev.resubscribed || ev.recovered);
      }),
      s.on("unsubscribed", () => setState("unsubscribed"))
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
    publish: (event, data) => client.publish(channel, event, data)
  };
}
function usePresence(channel) {
  const client = useEddy();
  const [members, setMembers] = useState([]);
  useEffect(() => {
    const s = acquire(client, channel);
    let live = true;
    let pending = null;
    const apply = (list, action, m) => {
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
        }
      );
    };
    const offs = [
      s.on("subscribed", load),
      s.on("presence", (ev) => {
        if (pending) pending.push(ev);
        else setMembers((list) => apply(list, ev.action, ev.member));
      })
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
export {
  EddyProvider,
  useChannel,
  useEddy,
  usePresence
};
