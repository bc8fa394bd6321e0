"""An in-memory host for the slice's netlink calls: links with their kind, alias, master, state
and addresses, and VXLAN flooding entries, behind the pyroute2 IPRoute calls we make."""


class Msg(dict):
    """A netlink message as pyroute2 gives it: items and get_attr."""

    def get_attr(self, name):
        return dict(self.get("attrs", ())).get(name)


class FakeIPRoute:
    """``links``: name -> {kind, alias, master (a name), up, addresses}. Every change is
    recorded in ``calls`` as (command, link name, arguments)."""

    def __init__(self, links=None):
        self.links = {}
        self.fdbs = {}  # index -> set of flooding destinations
        self.routes = []  # (dst, dst_len, gateway, oif index)
        self.calls = []
        self._next = 2
        for name, spec in (links or {}).items():
            self._add(name, **spec)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def close(self):
        pass

    def _add(self, ifname, kind=None, alias="", master=None, up=False, addresses=(), peer=None, **_kw):
        self.links[ifname] = {"index": self._next, "kind": kind, "alias": alias, "up": up,
                              "master": self.links[master]["index"] if master else None,
                              "addresses": list(addresses)}
        self._next += 1
        if peer:
            self._add(peer, kind=kind)

    def name_of(self, index):
        return next(name for name, link in self.links.items() if link["index"] == index)

    def master_of(self, name):
        index = self.links[name]["master"]
        return self.name_of(index) if index else None

    def _msg(self, name):
        link = self.links[name]
        info = Msg(attrs=[("IFLA_INFO_KIND", link["kind"])]) if link["kind"] else None
        return Msg(index=link["index"], flags=1 if link["up"] else 0,
                   attrs=[("IFLA_IFNAME", name), ("IFLA_IFALIAS", link["alias"]), ("IFLA_LINKINFO", info),
                          ("IFLA_MASTER", link["master"]), ("IFLA_ADDRESS", "02:00:00:00:00:%02x" % link["index"]),
                          ("IFLA_MTU", 1500)])

    def get_links(self, *indexes):
        names = [self.name_of(i) for i in indexes] if indexes else sorted(self.links)
        return [self._msg(name) for name in names]

    def link_lookup(self, ifname):
        return [self.links[ifname]["index"]] if ifname in self.links else []

    def get_addr(self, index, family=2):
        """Addresses are "A.B.C.D" or "A.B.C.D/len" (a /32 when no length is given)."""
        return [Msg(prefixlen=int((a.split("/") + ["32"])[1]), attrs=[("IFA_ADDRESS", a.split("/")[0])])
                for a in self.links[self.name_of(index)]["addresses"]]

    def addr(self, command, index, address, prefixlen):
        name = self.name_of(index)
        self.calls.append(("addr " + command, name, {"address": "%s/%d" % (address, prefixlen)}))
        have = self.links[name]["addresses"]
        if command == "add":
            have.append("%s/%d" % (address, prefixlen))
        else:
            have.remove("%s/%d" % (address, prefixlen))

    def get_routes(self, family=2, oif=None):
        return [Msg(dst_len=plen, attrs=[("RTA_DST", dst), ("RTA_GATEWAY", gw), ("RTA_OIF", index)])
                for dst, plen, gw, index in self.routes if oif in (None, index)]

    def route(self, command, dst, dst_len, gateway, oif):
        self.calls.append(("route " + command, self.name_of(oif), {"dst": "%s/%d" % (dst, dst_len), "via": gateway}))
        self.routes = [r for r in self.routes if r[:2] != (dst, dst_len)] + [(dst, dst_len, gateway, oif)]

    def link(self, command, index=None, ifname=None, **kw):
        if command == "add":
            self.calls.append(("add", ifname, kw))
            self._add(ifname, kind=kw.get("kind"), peer=kw.get("peer"))
            return
        name = self.name_of(index)
        self.calls.append((command, name, kw))
        if command == "del":
            del self.links[name]
            return
        link = self.links[name]
        if "ifalias" in kw:
            link["alias"] = kw["ifalias"]
        if "master" in kw:
            link["master"] = kw["master"] or None
        if "state" in kw:
            link["up"] = kw["state"] == "up"

    def fdb(self, command, ifindex, lladdr=None, dst=None):
        have = self.fdbs.setdefault(ifindex, set())
        if command == "dump":
            return [Msg(ifindex=ifindex, attrs=[("NDA_DST", d), ("NDA_LLADDR", "00:00:00:00:00:00")])
                    for d in sorted(have)]
        self.calls.append(("fdb " + command, self.name_of(ifindex), {"dst": dst}))
        if command == "append":
            have.add(dst)
        elif command == "del":
            have.discard(dst)
        return []
