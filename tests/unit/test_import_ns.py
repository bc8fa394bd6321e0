"""The Emulab/DETER NS-file importer (plugins/module_utils/importers/ns.py): its Tcl subset, Emulab's
semantics (names, LAN/link shaping split per side, units, addresses, routing), every tb-* command,
the notes (level, line, text) and the limits.  Documents that use only existing keys must pass
model.validate; the ones with per-member LAN shaping (being added to the model) validate once the
model accepts it (see ``validate_if_supported``)."""
import os
import textwrap

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import importers, model
from ansible_collections.testbed.containers.plugins.module_utils.importers import ImportFailed, ns

SOURCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "import_sources", "ns")
HEAD = "source tb_compat.tcl\nset ns [new Simulator]\n"  # lines 1 and 2 of most files below


def src(text):
    """An NS file: the text dedented, its first line being line 1."""
    return textwrap.dedent(text).lstrip("\n")


def convert(text, path="exp.ns", **options):
    return ns.convert(text, path, options)


def failure(text, **options):
    with pytest.raises(ImportFailed) as info:
        convert(text, **options)
    return info.value.notes


def of(notes, level):
    return [(n.line, n.message) for n in notes if n.level == level]


def tcl(text, **kw):
    return ns.evaluate(src(text), **kw)[0]


def member_shaping_supported():
    """Whether the model already accepts per-member LAN shaping (the lead adds it)."""
    doc = {"name": "e", "nodes": {"a": {"image": "i"}}, "lans": {"l": {"members": [{"node": "a", "delay": "1ms"}]}}}
    try:
        model.validate(doc)
        return True
    except model.ExperimentError:
        return False


def validate_if_supported(doc):
    if member_shaping_supported():
        model.validate(doc)


# ---------------------------------------------------------------------------------------------
# The Tcl subset


@pytest.mark.parametrize("text, result", [
    ('set a 1; set b "x $a y"', "x 1 y"),
    ("set a(1) q; set i 1; set b $a($i)", "q"),
    ("set i 2; set a(3) z; set b $a([expr {$i + 1}])", "z"),
    ("set a(x-1) q; set k x; set b $a($k-1)", "q"),
    ("set v ${a}x", None),
    ("set {a b} 3; set c ${a b}", "3"),
    ("set x [set y [list a b]]; llength $y", "2"),
    ("set v {a $b [c] \\n}", "a $b [c] \\n"),
    ('set v "a\\tb\\x41\\u00e9\\101\\$"', "a\tbA\u00e9A$"),
    ("set v [list a {b c} {} d]", "a {b c} {} d"),
    ("set x a; # a comment ; set x b\nset x", "a"),
    ("set x {line 1\nline 2}; string length $x", "13"),
    ("set x [expr {1 +\n 2}]", "3"),
    ("set x \\\n    5", "5"),
    ("set x 1; set y 2;set z 3", "3"),
    ("expr {1 + 2 * 3}", "7"),
    ("expr {(1 + 2) * 3}", "9"),
    ("expr {7 / 2}", "3"),
    ("expr {-7 / 2}", "-4"),
    ("expr {-7 % 3}", "2"),
    ("expr {7 / 2.0}", "3.5"),
    ("expr {1.5 * 2}", "3.0"),
    ("expr {2 ** 10}", "1024"),
    ("expr {10 - 4 - 3}", "3"),
    ("expr {3 >= 3 && 2 < 1 || !0}", "1"),
    ("expr {1 == 1.0}", "1"),
    ("expr {1 != 2}", "1"),
    ("expr {2 <= 1}", "0"),
    ('expr {"abc" eq "abc"}', "1"),
    ('expr {"abc" ne "abd"}', "1"),
    ('expr {"b" > "a"}', "1"),
    ("set a 5; expr {$a > 3 ? \"big\" : \"small\"}", "big"),
    ("set n 4; expr {[llength {a b}] * $n}", "8"),
    ("expr 010 + 1", "9"),
    ("expr {int(3.7) + round(2.5) + abs(-2)}", "8"),
    ("expr {sqrt(16) + double(1)}", "5.0"),
    ("expr {max(1, 5, 3) + min(4, 2)}", "7"),
    ("set x 3; expr $x*2", "6"),
    ("expr {1e3 + .5}", "1000.5"),
    ("expr {8 >> 1 | 1}", "5"),
    ('expr {"1" + 2}', "3"),
    ("expr {5 in {1 5 7}}", "1"),
    ("set s 0; for {set i 0} {$i < 10} {incr i} { if {$i == 5} continue; if {$i == 8} break; incr s $i }; set s", "23"),
    ("set r {}; foreach {a b} {1 2 3 4 5} { lappend r $a-$b }; set r", "1-2 3-4 5-"),
    ("set r {}; foreach a {1 2} b {x y z} { lappend r $a$b }; set r", "1x 2y z"),
    ("set i 0; while {$i < 5} { incr i }; set i", "5"),
    ("set i 0; while 1 { incr i; if {$i >= 3} break }; set i", "3"),
    ("proc f {a {b 10} args} { return [expr {$a + $b + [llength $args]}] }; f 1", "11"),
    ("proc f {a {b 10} args} { return [expr {$a + $b + [llength $args]}] }; f 1 2 3 4", "5"),
    ("proc f {} { set x 1 }; f", "1"),
    ("set g 5; proc f {} { global g; incr g }; f; set g", "6"),
    ("if {0} { set x a } elseif {1} { set x b } else { set x c }", "b"),
    ("if {1} then { set x a }", "a"),
    ("if 0 {set x a} {set x c}", "c"),
    ("if {0} {set x a}", ""),
    ("lindex [list a {b c} d] 1", "b c"),
    ("lindex {a {b c} d} end", "d"),
    ("lindex {a {b c} d} 1 0", "b"),
    ("lindex {a b} 5", ""),
    ("set s ab; append s cd ef; set s", "abcdef"),
    ("set l {}; lappend l a b; lappend l {c d}; list [llength $l] [lindex $l 2]", "3 {c d}"),
    ("lappend fresh x", "x"),
    ("incr fresh", "1"),
    ("set x 5; incr x -2", "3"),
    ("llength [list {*}{a b c} d]", "4"),
    ("format {%03d-%s-%.2f-%x} 7 ab 1.5 255", "007-ab-1.50-ff"),
    ("join [split a,b,c ,] -", "a-b-c"),
    ("concat {a b} {} { c }", "a b c"),
    ("lsort -integer -decreasing {10 2 33}", "33 10 2"),
    ("lrange {a b c d} 1 end", "b c d"),
    ("lsearch -exact {a b c} c", "2"),
    ("string toupper abc", "ABC"),
    ("string range abcdef 1 3", "bcd"),
    ("string equal -nocase AB ab", "1"),
    ("string match a* abc", "1"),
    ("eval set q 5; set q", "5"),
    ("eval {set q 6}", "6"),
    ("info exists nope", "0"),
    ("set a(1) x; set a(2) y; list [array exists a] [array size a] [array names a]", "1 2 {1 2}"),
    ("set x 1; unset x; info exists x", "0"),
    ("puts hello", ""),
    ("set l [list \"a b\" c]; foreach e $l { set last $e }; set last", "c"),
])
def test_tcl_subset(text, result):
    if result is None:
        assert tcl("set a 7; " + text) == "7x"
    else:
        assert tcl(text) == result


def test_tcl_rand_is_deterministic_and_noted():
    first, notes = ns.evaluate("expr {rand()}")
    assert first == ns.evaluate("expr {rand()}")[0]
    assert 0.0 <= float(first) < 1.0
    assert of(notes, "info") == [(1, "rand() is seeded with 0 here, so the conversion is deterministic")]


@pytest.mark.parametrize("text, line, message", [
    ("set x {a b", 1, "missing close-brace: the '{' opened at line 1 is never closed"),
    ('set x "abc\nset y 2', 1, "missing close-quote: the '\"' opened at line 1 is never closed"),
    ("set x 1\nset y [list a\nb", 2, "missing close-bracket: the '[' opened at line 2 is never closed"),
    ("puts a\nproc f {} {\n  if {$x} {\n}\n", 2, "missing close-brace: the '{' opened at line 2 is never closed"),
    ("puts a\nproc f {} {\n  set y {a b\n  set z 1\n", 3, "missing close-brace: the '{' opened at line 3 is never closed"),
    ("set a(1) x\nset b $a(1 x", 2, "missing ')': the array index opened at line 2 is never closed"),
    ("set x {a}b", 1, "extra characters after close-brace: 'b'"),
    ('set x "a"b', 1, "extra characters after close-quote: 'b'"),
    ("set x 1\nnosuch 1 2", 2, 'invalid command name "nosuch": not in the Tcl subset this importer evaluates '
                               '(see its documentation), nor an NS or Emulab command'),
    ("set x $y", 1, 'can\'t read "y": no such variable'),
    ("set a(1) 1; set b $a(2)", 1, 'can\'t read "a(2)": no such element in array'),
    ("set a 1; set a(1) 2", 1, 'can\'t set "a(1)": variable isn\'t array'),
    ("expr {1 +}", 1, "missing operand in expression '1 +'"),
    ("expr {1 / 0}", 1, "divide by zero"),
    ('expr {"a" + 1}', 1, 'can\'t use non-numeric string "a" as operand of "+"'),
    ("expr {09 + 1}", 1, 'invalid number "09" (a leading 0 means octal) in expression \'09 + 1\''),
    ("expr {foo}", 1, "invalid bareword \"foo\" in expression 'foo'"),
    ("for {set i 0} {$i < 3} {incr i}", 1, 'wrong # args: should be "for start test next command"'),
    ("proc f {a b} {}\nf 1", 2, 'wrong # args: should be "f a b"'),
    ("proc f {} {\n  f\n}\nf", 2, "procs call each other more than 100 deep: an endless recursion?"),
    ("set l {a {b} c\nlindex $l 0", 1, "missing close-brace: the '{' opened at line 1 is never closed"),
    ("llength {a {b}c}", 1, "list element in braces followed by 'c' instead of space in 'a {b}c'"),
    ("incr x 1.5", 1, 'expected integer but got "1.5"'),
    ("source other.tcl", 1, "source other.tcl: only 'source tb_compat.tcl' is understood; paste the other file into this one"),
    ("info procs", 1, "info procs: not in the Tcl subset this importer evaluates (only info exists)"),
])
def test_tcl_errors_name_their_line(text, line, message):
    with pytest.raises(ImportFailed) as info:
        ns.evaluate(text)
    assert of(info.value.notes, "error") == [(line, message)]


def test_break_outside_a_loop_is_an_error_in_a_file():
    notes = failure(HEAD + "set a [$ns node]\nbreak\n")
    assert of(notes, "error") == [(4, 'invoked "break" outside of a loop')]


def test_a_syntax_error_inside_a_proc_body_names_its_line_in_the_file():
    notes = failure(src("""
        source tb_compat.tcl
        set ns [new Simulator]
        proc build {} {
            global ns
            set x [$ns node
        }
        build
        """))
    assert of(notes, "error") == [(5, "missing close-bracket: the '[' opened at line 5 is never closed")]


# ---------------------------------------------------------------------------------------------
# Real-world-style files


def test_dumbbell_file_with_loops_arrays_and_lappend():
    with open(os.path.join(SOURCES, "dumbbell.ns")) as f:
        doc, notes = convert(f.read(), "dumbbell.ns", os_images={"UBUNTU18-64-STD": "ubuntu:18.04"})
    start = "/usr/local/bin/iperf3 -s -D"
    assert doc == {
        "name": "dumbbell",
        "defaults": {"image": importers.DEFAULT_IMAGE},
        "nodes": {
            "routerl": {"image": "ubuntu:18.04", "forwarding": True},
            "routerr": {"image": "ubuntu:18.04", "forwarding": True},
            "client-0": {}, "server-0": {"start": start},
            "client-1": {}, "server-1": {"start": start},
            "client-2": {}, "server-2": {"start": start},
        },
        "lans": {
            "lanl": {"members": ["routerl", "client-0", "client-1", "client-2"], "bandwidth": "100mbit", "delay": "1ms"},
            "lanr": {"members": ["routerr", "server-0", "server-1", "server-2"], "bandwidth": "100mbit", "delay": "1ms"},
        },
        "links": {"bottleneck": {"endpoints": ["routerl", "routerr"], "bandwidth": "10mbit", "delay": "20ms", "loss": 0.01}},
        "routing": "static",
    }
    assert of(notes, "warning") == [] and of(notes, "error") == []
    infos = of(notes, "info")
    assert (6, "node 'routerL' is named 'routerl' here") in infos
    # one note per array: every element is named by the same rule
    assert (14, "node 'client(0)' is named 'client-0' here, and so is every element of the array client: "
                "client(I) is client-I") in infos
    assert not [n for n in infos if "'client(1)'" in n[1]]
    assert (15, "node 'server(0)' is named 'server-0' here, and so is every element of the array server: "
                "server(I) is server-I") in infos
    assert (21, "LAN 'lanL' is named 'lanl' here") in infos
    assert (8, "tb-set-node-os UBUNTU18-64-STD: nodes with this OS run ubuntu:18.04 (os_images)") in infos
    assert (None, "nodes without tb-set-node-os run the default image %s (defaults.image)" % importers.DEFAULT_IMAGE) in infos
    model.validate(doc)


def test_ring_file_built_by_a_proc_keeps_emulab_names_for_local_variables():
    with open(os.path.join(SOURCES, "ring.ns")) as f:
        doc, notes = convert(f.read(), "ring.ns")
    assert list(doc["nodes"]) == ["router-0", "host-0", "router-1", "host-1", "router-2", "host-2", "router-3", "host-3"]
    # `set lan [...]` in the proc is a local variable: Emulab names such a LAN itself (its counter
    # counts nodes, links and LANs).
    assert doc["lans"] == {
        "tblan-lan3": {"members": ["router-0", "host-0"], "bandwidth": "100mbit"},
        "tblan-lan6": {"members": ["router-1", "host-1"], "bandwidth": "100mbit"},
        "tblan-lan9": {"members": ["router-2", "host-2"], "bandwidth": "100mbit"},
        "tblan-lan12": {"members": ["router-3", "host-3"], "bandwidth": "100mbit"},
    }
    assert doc["links"]["ring-3"] == {"endpoints": ["router-3", "router-0"], "bandwidth": "1gbit", "delay": "5ms"}
    assert [n for n in doc["nodes"] if doc["nodes"][n].get("forwarding")] == ["router-0", "router-1", "router-2", "router-3"]
    infos = of(notes, "info")
    assert (9, "this LAN is not assigned to a global variable: it is named 'tblan-lan3', as Emulab names it") in infos
    assert (18, "link 'ring(0)' is named 'ring-0' here, and so is every element of the array ring: ring(I) is ring-I") in infos
    model.validate(doc)


def test_nested_substitution_names_the_node_after_the_inner_variable():
    doc, notes = convert(HEAD + src("""
        set X [set Y [$ns node]]
        set Z [$ns node]
        set l [$ns duplex-link $X $Z 100Mb 0ms DropTail]
        set count [llength [list $X $Y $Z]]
        $ns run
        """))
    assert list(doc["nodes"]) == ["y", "z"]
    assert doc["links"] == {"l": {"endpoints": ["y", "z"], "bandwidth": "100mbit"}}
    assert (3, "node 'Y' is named 'y' here") in of(notes, "info")
    model.validate(doc)


def test_array_index_with_substitution_and_parallel_links_are_distinct():
    doc, notes = convert(HEAD + src("""
        for {set i 1} {$i <= 2} {incr i} { set n($i) [$ns node] }
        set i 1
        set fast [$ns duplex-link $n($i) $n([expr {$i + 1}]) 1Gb 1ms DropTail]
        set slow [$ns duplex-link $n(1) $n(2) 10Mb 50ms DropTail]
        tb-set-link-loss $n(1) $n(2) 0.02
        $ns rtproto Static
        $ns run
        """))
    assert doc["links"] == {
        "fast": {"endpoints": ["n-1", "n-2"], "bandwidth": "1gbit", "delay": "1ms"},
        "slow": {"endpoints": ["n-1", "n-2"], "bandwidth": "10mbit", "delay": "50ms", "loss": 0.02},
    }
    # Two links on each node: they forward (static routing).
    assert doc["nodes"] == {"n-1": {"forwarding": True}, "n-2": {"forwarding": True}}
    assert of(notes, "warning") == [(7, "tb-set-link-loss: 2 links join n-1 and n-2: the last one created (slow, line 6) "
                                        "is taken, as Emulab does; name the link instead")]
    model.validate(doc)


def test_unassigned_objects_keep_emulab_names():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]
        $ns node
        set c [$ns node]
        $ns duplex-link $a $c 100Mb 0ms DropTail
        lappend all [$ns make-lan "$a $c" 10Mb 0ms]
        $ns run
        """))
    assert list(doc["nodes"]) == ["a", "tbnode-n2", "c"]
    assert list(doc["links"]) == ["tblink-l4"] and list(doc["lans"]) == ["tblan-lan5"]
    infos = of(notes, "info")
    assert (4, "this node is not assigned to a global variable: it is named 'tbnode-n2', as Emulab names it") in infos
    assert (6, "this link is not assigned to a global variable: it is named 'tblink-l4', as Emulab names it") in infos
    assert (7, "this LAN is not assigned to a global variable: it is named 'tblan-lan5', as Emulab names it") in infos
    model.validate(doc)


def test_a_second_object_named_by_the_same_variable_is_an_error():
    notes = failure(HEAD + src("""
        for {set i 0} {$i < 2} {incr i} {
            set n [$ns node]
        }
        """))
    assert of(notes, "error") == [(4, "set n: Emulab names the new node 'n', but the node created at line 4 already has "
                                      "that name; use an array such as n($i)")]


def test_names_are_made_ours_and_kept_unique():
    doc, notes = convert(HEAD + src("""
        set Node_A [$ns node]
        set node-a [$ns node]
        set 9lives [$ns node]
        $ns run
        """))
    assert list(doc["nodes"]) == ["node-a", "node-a-2", "n9lives"]
    renames = [n for n in of(notes, "info") if "is named" in n[1]]
    assert renames == [(3, "node 'Node_A' is named 'node-a' here"), (4, "node 'node-a' is named 'node-a-2' here"),
                       (5, "node '9lives' is named 'n9lives' here")]


# ---------------------------------------------------------------------------------------------
# Shaping: Emulab's per-side split and our semantics


def test_lan_delay_is_halved_per_member_and_loss_split_per_side():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]
        set b [$ns node]
        set c [$ns node]
        set lan0 [$ns make-lan "$a $b $c" 100Mb 100ms]
        tb-set-lan-loss $lan0 0.05
        $ns run
        """))
    # A->B crosses A's attachment then B's: 50ms + 50ms = Emulab's 100ms; the losses compound to
    # 0.05 (1 - sqrt(0.95) per side, Emulab's choice); the bandwidth is the LAN's, whole.
    assert doc["lans"] == {"lan0": {"members": ["a", "b", "c"], "bandwidth": "100mbit", "delay": "50ms", "loss": 0.0253206}}
    side = doc["lans"]["lan0"]["loss"]
    assert abs((1 - (1 - side) ** 2) - 0.05) < 1e-6
    model.validate(doc)


@pytest.mark.parametrize("loss, per_side", [(0.2, 0.105573), (0.1, 0.0513167), (0.05, 0.0253206), (0.025, 0.0125791)])
def test_lan_loss_per_side_matches_emulab_test_suite(loss, per_side):
    # Emulab's testsuite (tbcmd, db1) expects 0.106, 0.051, 0.025 and 0.013 per member.
    doc, _notes = convert(HEAD + "set a [$ns node]\nset b [$ns node]\nset l [$ns make-lan \"$a $b\" 100Mb 0ms]\n"
                                 "tb-set-lan-loss $l %s\n$ns run\n" % loss)
    assert doc["lans"]["l"]["loss"] == per_side
    assert round(per_side, 3) == {0.2: 0.106, 0.1: 0.051, 0.05: 0.025, 0.025: 0.013}[loss]


def test_link_delay_and_loss_are_end_to_end_as_written():
    doc, _notes = convert(HEAD + src("""
        set a [$ns node]
        set b [$ns node]
        set wan [$ns duplex-link $a $b 1.5Mb 40ms DropTail]
        tb-set-link-loss $wan 0.1
        $ns run
        """))
    assert doc["links"] == {"wan": {"endpoints": ["a", "b"], "bandwidth": "1500kbit", "delay": "40ms", "loss": 0.1}}
    model.validate(doc)


def test_odd_lan_delay_halves_to_microseconds():
    doc, _notes = convert(HEAD + "set a [$ns node]\nset b [$ns node]\nset l [$ns make-lan \"$a $b\" 1Gb 3ms]\n$ns run\n")
    assert doc["lans"]["l"]["delay"] == "1500us"
    model.validate(doc)


def test_link_simplex_params_become_a_direction():
    doc, notes = convert(HEAD + src("""
        set client [$ns node]
        set server [$ns node]
        set link0 [$ns duplex-link $client $server 10.0Mb 40.0ms DropTail]
        tb-set-link-simplex-params $link0 $server 15.0ms 5.0Mb 0.001
        $ns run
        """))
    assert doc["links"] == {"link0": {
        "endpoints": ["client", "server"],
        "client_to_server": {"bandwidth": "10mbit", "delay": "40ms"},
        "server_to_client": {"bandwidth": "5mbit", "delay": "15ms", "loss": 0.001},
    }}
    assert of(notes, "warning") == []
    model.validate(doc)


def test_queue_limit_of_a_link_direction():
    doc, notes = convert(HEAD + src("""
        set client [$ns node]
        set server [$ns node]
        set link0 [$ns duplex-link $client $server 10Mb 40ms DropTail]
        set queue0 [[$ns link $server $client] queue]
        $queue0 set limit_ 40
        set limit [$queue0 set limit_]
        $queue0 set queue-in-bytes_ 1
        $ns run
        """))
    assert doc["links"]["link0"] == {"endpoints": ["client", "server"], "bandwidth": "10mbit", "delay": "40ms",
                                     "server_to_client": {"queue": 40}}
    assert of(notes, "info")[0] == (7, "queue limit_ 40: the queue of link link0 at server holds 40 packets (queue:)")
    assert of(notes, "warning") == [(9, "queue queue-in-bytes_: queues are counted in packets here, limit_ is taken as packets")]
    model.validate(doc)


def test_red_queue_and_other_queue_types_are_warnings():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]
        set b [$ns node]
        set l1 [$ns duplex-link $a $b 10Mb 0ms RED]
        set l2 [$ns duplex-link $a $b 10Mb 0ms SFQ]
        set q [[$ns link $a $b] queue]
        $q set thresh_ 3
        $ns run
        """))
    assert of(notes, "warning") == [
        (5, "duplex-link: RED queues are not carried over: the queue is drop-tail"),
        (6, "duplex-link: queue type 'SFQ': Emulab uses DropTail for it, as here"),
        (7, "$ns link: 2 links join a and b: the last one created (l2, line 6) is taken, as Emulab does; name the link instead"),
        (8, "queue thresh_: RED parameters are not carried over (queues are drop-tail); ignored"),
    ]
    model.validate(doc)


@pytest.mark.parametrize("bandwidth, ours", [
    ("100Mb", "100mbit"), ("100Mbps", "100mbit"), ("100M", "100mbit"), ("1.5Mb", "1500kbit"), ("10kb", "10kbit"),
    ("10Kbps", "10kbit"), ("56k", "56kbit"), ("1Gb", "1gbit"), ("2Gbps", "2gbit"), ("1000000", "1mbit"),
    ("64000b", "64kbit"), ("1200bps", "1200bit"), ("*", None),
])
def test_bandwidth_units_are_bits_per_second(bandwidth, ours):
    doc, _notes = convert(HEAD + "set a [$ns node]\nset b [$ns node]\nset l [$ns duplex-link $a $b %s 0ms DropTail]\n"
                                 "$ns run\n" % bandwidth)
    assert doc["links"]["l"].get("bandwidth") == ours
    model.validate(doc)


@pytest.mark.parametrize("delay, ours", [
    ("10ms", "10ms"), ("0.5s", "500ms"), ("2s", "2s"), ("0.01", "10ms"), ("1", "1s"), ("500us", "500us"),
    ("2500ns", "3us"), ("1.5ms", "1500us"), ("0ms", None), ("0", None),
])
def test_delay_units_bare_numbers_are_seconds(delay, ours):
    doc, _notes = convert(HEAD + "set a [$ns node]\nset b [$ns node]\nset l [$ns duplex-link $a $b 1Gb %s DropTail]\n"
                                 "$ns run\n" % delay)
    assert doc["links"]["l"].get("delay") == ours
    model.validate(doc)


@pytest.mark.parametrize("args, message", [
    ("100mb 10ms", "duplex-link: bandwidth '100mb': unknown unit 'mb' (Emulab's: b, kb, Mb, Gb, also as bps/kbps/Mbps/Gbps "
                   "and k/K/M/G, all bits per second; a bare number is bits per second)"),
    ("fast 10ms", "duplex-link: bandwidth 'fast' is not a number with a unit such as 100Mb"),
    ("0Mb 10ms", "duplex-link: bandwidth '0Mb' must be more than 0"),
    ("10Mb 10min", "duplex-link: delay '10min' is not a number with a unit such as 10ms (units s, ms, us, ns; "
                   "a bare number is seconds)"),
])
def test_bad_units_are_errors_with_the_line(args, message):
    notes = failure(HEAD + "set a [$ns node]\nset b [$ns node]\n\nset l [$ns duplex-link $a $b %s DropTail]\n" % args)
    assert of(notes, "error") == [(6, message)]


@pytest.mark.parametrize("loss, message", [
    ("1.5", "tb-set-link-loss: loss rate 1.5 is not a valid loss rate (0, or 0.000005 to 1)"),
    ("0.000001", "tb-set-link-loss: loss rate 0.000001 is not a valid loss rate (0, or 0.000005 to 1)"),
    ("lots", "tb-set-link-loss: loss rate 'lots' is not a number"),
])
def test_bad_loss_rates_are_errors(loss, message):
    notes = failure(HEAD + "set a [$ns node]\nset b [$ns node]\nset l [$ns duplex-link $a $b 1Gb 0ms DropTail]\n"
                           "tb-set-link-loss $l %s\n" % loss)
    assert of(notes, "error") == [(6, message)]


def test_noshaping_drops_the_bandwidth_only():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]
        set b [$ns node]
        set l [$ns duplex-link $a $b 10Mb 5ms DropTail]
        tb-set-noshaping $l 1
        $ns run
        """))
    assert doc["links"]["l"] == {"endpoints": ["a", "b"], "delay": "5ms"}
    assert (6, "tb-set-noshaping: the bandwidth of link l is not shaped (delay and loss still are)") in of(notes, "info")
    model.validate(doc)


# ---------------------------------------------------------------------------------------------
# Per-member LAN parameters (member keys being added to the model: validated once it has them)


def test_per_member_lan_parameters():
    doc, notes = convert(HEAD + src("""
        set node0 [$ns node]
        set node1 [$ns node]
        set node2 [$ns node]
        set node3 [$ns node]
        set lan0 [$ns make-lan "$node0 $node1 $node2 $node3" 100Mb 0ms]
        tb-set-lan-loss $lan0 0.2
        tb-set-node-lan-delay $node0 $lan0 100ms
        tb-set-node-lan-bandwidth $node0 $lan0 20Mb
        tb-set-node-lan-loss $node0 $lan0 0.4
        tb-set-node-lan-params $node1 $lan0 150ms 30Mb 0.0
        tb-set-lan-simplex-params $lan0 $node2 0ms 100Mb 0.02 100ms 10Mb 0.03
        $ns run
        """))
    # Emulab's test suite (tbcmd): node0 100ms 20Mb 0.4, node1 150ms 30Mb 0, the others the LAN's
    # 0.106: per-member values are a side's, as given (not halved).
    assert doc["lans"] == {"lan0": {
        "members": [
            {"node": "node0", "bandwidth": "20mbit", "delay": "100ms", "loss": 0.4},
            {"node": "node1", "bandwidth": "30mbit", "delay": "150ms", "loss": 0},
            # Emulab's "to" parameters are node -> LAN (from_node), its "from" ones LAN -> node (to_node).
            {"node": "node2", "to_node": {"bandwidth": "10mbit", "delay": "100ms", "loss": 0.03},
             "from_node": {"loss": 0.02}},
            "node3",
        ],
        "bandwidth": "100mbit", "loss": 0.105573,
    }}
    assert of(notes, "warning") == [] and of(notes, "error") == []
    validate_if_supported(doc)


def test_node_lan_commands_accept_lan_node_order_with_a_warning():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]
        set b [$ns node]
        set lan [$ns make-lan "$a $b" 100Mb 100ms]
        tb-set-node-lan-delay $lan $a 10ms
        tb-set-node-lan-params $lan $b 20ms 10Mb 0
        $ns run
        """))
    assert doc["lans"]["lan"] == {"members": [{"node": "a", "delay": "10ms"}, {"node": "b", "bandwidth": "10mbit", "delay": "20ms"}],
                                  "bandwidth": "100mbit", "delay": "50ms"}
    assert of(notes, "warning") == [
        (6, "tb-set-node-lan-delay: arguments in the order LAN NODE; Emulab's is NODE LAN (it refuses this order): "
            "read as node a on LAN lan"),
        (7, "tb-set-node-lan-params: arguments in the order LAN NODE; Emulab's is NODE LAN (it refuses this order): "
            "read as node b on LAN lan"),
    ]
    validate_if_supported(doc)


def test_queue_limit_of_a_lan_member():
    doc, _notes = convert(HEAD + src("""
        set a [$ns node]
        set b [$ns node]
        set lan [$ns make-lan "$a $b" 100Mb 0ms]
        [[$ns lanlink $lan $a] queue] set limit_ 30
        $ns run
        """))
    assert doc["lans"]["lan"]["members"] == [{"node": "a", "from_node": {"queue": 30}}, "b"]
    validate_if_supported(doc)


@pytest.mark.parametrize("line5, message", [
    ("tb-set-node-lan-delay $a $l2 10ms", "tb-set-node-lan-delay: node a is not in LAN l2"),
    ("tb-set-node-lan-delay $a $b 10ms", "tb-set-node-lan-delay: 'b' is not a LAN"),
    ("tb-set-node-lan-bandwidth $l $l 10Mb", "tb-set-node-lan-bandwidth: 'l' is not a node"),
    ("tb-set-lan-simplex-params $l $c 0ms 1Mb 0 0ms 1Mb 0", "tb-set-lan-simplex-params: node c is not in LAN l"),
    ("tb-set-link-simplex-params $l $a 1ms 1Mb 0", "tb-set-link-simplex-params: 'l' is not a link"),
    ("tb-set-lan-loss $a 0.1", "tb-set-lan-loss: 'a' is not a LAN"),
])
def test_per_member_command_errors(line5, message):
    text = HEAD + src("""
        set a [$ns node]; set b [$ns node]; set c [$ns node]
        set l [$ns make-lan "$a $b" 100Mb 0ms]; set l2 [$ns make-lan "$b $c" 1Mb 0ms]
        %s
        """) % line5
    assert of(failure(text), "error") == [(5, message)]


# ---------------------------------------------------------------------------------------------
# Addresses


def test_explicit_addresses_and_netmasks():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]
        set b [$ns node]
        set c [$ns node]
        set r [$ns node]
        set lan0 [$ns make-lan "$a $b $c" 100Mb 0ms]
        set link0 [$ns duplex-link $r $c 1Gb 0ms DropTail]
        set link1 [$ns duplex-link $r $a 1Gb 0ms DropTail]
        tb-set-ip-lan $a $lan0 192.168.1.10
        tb-set-ip-lan $c $lan0 192.168.1.2
        tb-set-netmask $link0 255.255.255.252
        tb-set-ip-link $r $link0 10.9.0.1
        tb-set-ip-interface $a $r 10.8.0.1
        tb-set-ip-interface $r $a 10.8.0.2
        set d [$ns node]
        set link2 [$ns duplex-link $d $r 1Gb 0ms DropTail]
        tb-set-ip $d 10.7.0.5
        $ns rtproto Static
        $ns run
        """))
    assert doc["lans"] == {"lan0": {"members": [{"node": "a", "ip": "192.168.1.10"}, {"node": "b", "ip": "192.168.1.3"},
                                                {"node": "c", "ip": "192.168.1.2"}],
                                    "subnet": "192.168.1.0/24", "bandwidth": "100mbit"}}
    assert doc["links"] == {
        "link0": {"endpoints": [{"node": "r", "ip": "10.9.0.1"}, {"node": "c", "ip": "10.9.0.2"}], "subnet": "10.9.0.0/30",
                  "bandwidth": "1gbit"},
        "link1": {"endpoints": [{"node": "r", "ip": "10.8.0.2"}, {"node": "a", "ip": "10.8.0.1"}], "subnet": "10.8.0.0/24",
                  "bandwidth": "1gbit"},
        "link2": {"endpoints": [{"node": "d", "ip": "10.7.0.5"}, {"node": "r", "ip": "10.7.0.2"}], "subnet": "10.7.0.0/24",
                  "bandwidth": "1gbit"},
    }
    assert doc["nodes"]["r"] == {"forwarding": True} and doc["nodes"]["b"] == {} and doc["nodes"]["d"] == {}
    infos = of(notes, "info")
    assert (7, "LAN lan0: members without tb-set-ip get addresses as Emulab gives them (from .2 up): b 192.168.1.3") in infos
    assert (17, "link link2: members without tb-set-ip get addresses as Emulab gives them (from .2 up): r 10.7.0.2") in infos
    model.validate(doc)


def test_netmask_without_addresses_chooses_a_subnet():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]
        set b [$ns node]
        set big [$ns make-lan "$a $b" 100Mb 0ms]
        tb-set-netmask $big 255.255.254.0
        set p2p [$ns duplex-link $a $b 100Mb 0ms DropTail]
        tb-set-netmask $p2p 255.255.255.0
        $ns run
        """))
    assert doc["lans"]["big"]["subnet"] == "10.10.254.0/23"
    assert "subnet" not in doc["links"]["p2p"]
    assert (6, "tb-set-netmask: LAN big has no fixed address: its subnet is 10.10.254.0/23") in of(notes, "info")
    model.validate(doc)


@pytest.mark.parametrize("lines, line, message", [
    ("tb-set-ip-lan $a $lan 10.1.1.1\ntb-set-ip-lan $b $lan 10.1.2.1",
     7, "LAN lan: addresses 10.1.1.1 (line 6) and 10.1.2.1 (line 7) are in different subnets (10.1.1.0/24, 10.1.2.0/24) "
        "under netmask /24"),
    ("tb-set-ip $a 10.1.1.1", 6, "tb-set-ip: node a has 2 connections at this point; Emulab needs exactly one "
                                 "(use tb-set-ip-link, tb-set-ip-lan or tb-set-ip-interface)"),
    ("tb-set-ip-lan $c $lan 10.1.1.1", 6, "tb-set-ip-lan: node c is not in LAN lan"),
    ("tb-set-ip-link $a $lan 10.1.1.1", 6, "tb-set-ip-link: 'lan' is not a link"),
    ("tb-set-ip-lan $a $lan 10.1.1.300", 6, "tb-set-ip-lan: '10.1.1.300' is not an IPv4 address"),
    ("tb-set-ip-lan $a $lan 10.1.1.0", 6, "LAN lan: address 10.1.1.0 is the network or broadcast address of 10.1.1.0/24"),
    ("tb-set-ip-interface $a $c 10.1.1.1", 6, "tb-set-ip-interface: no link between a and c"),
    ("tb-set-netmask $lan 255.255.255.254", 6, "tb-set-netmask: 255.255.255.254 leaves no room for two addresses; "
                                               "use 255.255.255.252 (/30) or shorter"),
    ("tb-set-netmask $lan 255.0.255.0", 6, "tb-set-netmask: '255.0.255.0' is not a netmask such as 255.255.255.0"),
    ("tb-set-ip-lan $a $lan 10.1.1.5\ntb-set-ip-link $b $l 10.1.1.6",
     7, "link l: subnet 10.1.1.0/24 overlaps 10.1.1.0/24 of LAN lan (line 6)"),
])
def test_address_errors(lines, line, message):
    text = HEAD + "set a [$ns node]; set b [$ns node]; set c [$ns node]\nset lan [$ns make-lan \"$a $b\" 100Mb 0ms]\n" \
        "set l [$ns duplex-link $a $b 100Mb 0ms DropTail]\n" + lines + "\n$ns run\n"
    assert of(failure(text), "error") == [(line, message)]


def test_many_links_widen_the_address_pool():
    doc, notes = convert(HEAD + src("""
        for {set i 0} {$i <= 300} {incr i} {
            set n($i) [$ns node]
            if {$i > 0} { set l($i) [$ns duplex-link $n([expr {$i - 1}]) $n($i) 1Gb 0ms DropTail] }
        }
        $ns run
        """))
    assert len(doc["links"]) == 300
    assert doc["addressing"] == {"pool": "10.10.0.0/15", "prefixlen": 24}
    assert (None, "300 LANs and links get allocated subnets: more than 10.10.0.0/16 holds, so addressing.pool is "
                  "10.10.0.0/15") in of(notes, "info")
    model.validate(doc)


# ---------------------------------------------------------------------------------------------
# Routing


@pytest.mark.parametrize("line, routing, forwarding, level, message", [
    ("$ns rtproto Static", "static", True, None, None),
    ("$ns rtproto Static-old", "static", True, None, None),
    ("$ns rtproto Session", "static", True, "warning",
     "$ns rtproto Session: Emulab runs OSPF, whose routes follow link failures; here routes are static, computed once "
     "(routing: static)"),
    ("$ns rtproto Manual", "none", False, "info",
     "$ns rtproto Manual: no routes are set up (routing: none); add routes in the nodes' start commands"),
    ("tb-set-ip-routing ospf", "static", True, "warning",
     "tb-set-ip-routing ospf: Emulab runs OSPF, whose routes follow link failures; here routes are static, computed once "
     "(routing: static)"),
    ("tb-set-ip-routing none", "none", False, None, None),
    ("$ns rtproto Fancy", "none", False, "warning",
     "$ns rtproto Fancy: not a routing protocol Emulab knows (it ignores it too); ignored"),
])
def test_routing(line, routing, forwarding, level, message):
    doc, notes = convert(HEAD + src("""
        set a [$ns node]; set r [$ns node]; set b [$ns node]
        set l1 [$ns duplex-link $a $r 1Gb 0ms DropTail]
        set l2 [$ns duplex-link $r $b 1Gb 0ms DropTail]
        %s
        $ns run
        """) % line)
    assert doc["routing"] == routing
    assert doc["nodes"]["r"] == ({"forwarding": True} if forwarding else {})
    if level:
        assert (6, message) in of(notes, level)
    model.validate(doc)


def test_no_rtproto_means_no_routes():
    doc, notes = convert(HEAD + "set a [$ns node]\n$ns run\n")
    assert doc["routing"] == "none"
    assert (None, "no `$ns rtproto`: Emulab sets up no routes, so routing: none (`$ns rtproto Static` gives routes "
                  "through the nodes)") in of(notes, "info")


# ---------------------------------------------------------------------------------------------
# Nodes: OS images, start commands, pinning, memory


def test_os_images_and_one_warning_per_unknown_os():
    doc, notes = convert(HEAD + src("""
        for {set i 0} {$i < 3} {incr i} {
            set n($i) [$ns node]
            tb-set-node-os $n($i) FBSD-STD
        }
        set u [$ns node]
        tb-set-node-os $u UBUNTU20-64-STD
        set v [$ns node]
        tb-set-node-os $v UBUNTU20-64-STD
        set w [$ns node]
        tb-set-node-os $w XEN-VM XEN44-64-STD
        $ns run
        """), os_images={"UBUNTU20-64-STD": "ubuntu:20.04"}, default_image="testbed/alpine:3")
    assert doc["defaults"] == {"image": "testbed/alpine:3"}
    assert doc["nodes"] == {"n-0": {}, "n-1": {}, "n-2": {}, "u": {"image": "ubuntu:20.04"}, "v": {"image": "ubuntu:20.04"},
                            "w": {}}
    assert of(notes, "warning") == [
        (12, "tb-set-node-os: the parent OS 'XEN44-64-STD' (Emulab's VM host) has no container meaning; ignored"),
        (5, "tb-set-node-os FBSD-STD: os_images has no image for this OS; nodes with it run testbed/alpine:3"),
        (12, "tb-set-node-os XEN-VM: os_images has no image for this OS; nodes with it run testbed/alpine:3"),
    ]
    assert (8, "tb-set-node-os UBUNTU20-64-STD: nodes with this OS run ubuntu:20.04 (os_images)") in of(notes, "info")
    model.validate(doc)


def test_start_commands_host_and_memory():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]
        set b [$ns node]
        set c [$ns node]
        tb-set-node-startcmd $a "/proj/x/run.sh >& /tmp/out"
        tb-set-node-startup $b "echo up"
        tb-set-node-startcmd $b {echo "$HOME"}
        tb-fix-node $c pc42
        tb-set-node-memory-size $c 512
        tb-set-node-memory-size $b 2GB
        tb-set-node-memory-size $a lots
        $a start-command "echo again"
        $ns run
        """))
    assert doc["nodes"] == {
        "a": {"start": "echo again"},
        "b": {"start": 'echo up\necho "$HOME"', "memory": "2g"},
        "c": {"host": "pc42", "memory": "512m"},
    }
    assert of(notes, "warning") == [(12, "tb-set-node-memory-size: 'lots' is not a memory size (megabytes); ignored")]
    infos = of(notes, "info")
    assert (9, "tb-fix-node: node c is pinned to host 'pc42' (host:), which must be an inventory host") in infos
    assert (13, "start-command: replaces the earlier start command of node a") in infos
    assert (8, "node b has both tb-set-node-startup (line 7) and a start command: its start runs both, the startup one first") \
        in infos
    model.validate(doc)


# ---------------------------------------------------------------------------------------------
# Every other tb-* command: a warning naming it, with its line


@pytest.mark.parametrize("command, message", [
    ("tb-set-hardware $a pc3000", "tb-set-hardware: hardware type 'pc3000' has no container meaning; ignored"),
    ("tb-set-node-rpms $a /proj/x/a.rpm", "tb-set-node-rpms: RPMs are not installed in containers: build them into the "
                                          "node's image; ignored"),
    ("tb-set-node-tarfiles $a /opt /proj/x/opt.tgz",
     "tb-set-node-tarfiles: tar files are not unpacked in containers: put them into the node's image; ignored"),
    ("tb-set-node-cmdline $a {console=ttyS0}", "tb-set-node-cmdline: a kernel command line has no container meaning "
                                               "(containers share the host's kernel); ignored"),
    ("tb-set-colocate-factor 4", "tb-set-colocate-factor: Emulab's virtual node packing has no container meaning; ignored"),
    ("tb-use-endnodeshaping 1", "tb-use-endnodeshaping: shaping always happens on the hosts' ends of the nodes' links here; "
                                "ignored"),
    ("tb-set-link-est-bandwidth $l 5Mb", "tb-set-link-est-bandwidth: estimated bandwidths only guide Emulab's mapper: no "
                                         "shaping meaning; ignored"),
    ("tb-set-lan-protocol $lan 80211a", "tb-set-lan-protocol: LAN protocols (wireless) have no container meaning: every LAN is "
                                        "Ethernet; ignored"),
    ("tb-set-node-failure-action $a nonfatal", "tb-set-node-failure-action: Emulab's swap-in failure policy has no container "
                                               "meaning; ignored"),
    ("tb-set-vlink-emulation vlan", "tb-set-vlink-emulation: virtual link emulation has no container meaning; ignored"),
    ("tb-set-uselatestwadata 1", "tb-set-uselatestwadata: wide-area link data has no container meaning; ignored"),
    ("tb-set-usesharednode 1", "tb-set-usesharednode: shared physical nodes have no container meaning (containers always "
                               "share hosts); ignored"),
    ("tb-set-node-usesharednode $a 0.5", "tb-set-node-usesharednode: shared physical nodes have no container meaning "
                                         "(containers always share hosts); ignored"),
    ("tb-set-sync-server $a", "tb-set-sync-server: Emulab's synchronization server (emulab-sync barriers) is not carried "
                              "over; ignored"),
    ("tb-set-lan-bandwidth $lan 10Mb", "tb-set-lan-bandwidth: is not an Emulab command (Emulab refuses it): give the "
                                       "bandwidth to make-lan, or per member with tb-set-node-lan-bandwidth; ignored"),
    ("tb-set-link-bandwidth $l 10Mb", "tb-set-link-bandwidth: is not an Emulab command (Emulab refuses it): give the "
                                      "bandwidth to duplex-link, or per direction with tb-set-link-simplex-params; ignored"),
    ("tb-set-frobnicate $a 1", "tb-set-frobnicate is not an Emulab command this importer knows: ignored"),
])
def test_ignored_tb_commands_warn_with_their_line(command, message):
    doc, notes = convert(HEAD + src("""
        set a [$ns node]; set b [$ns node]
        set l [$ns duplex-link $a $b 10Mb 0ms DropTail]
        set lan [$ns make-lan "$a $b" 10Mb 0ms]

        %s
        $ns run
        """) % command)
    assert of(notes, "warning") == [(7, message)]
    model.validate(doc)


def test_a_user_proc_named_tb_something_is_called():
    doc, notes = convert(HEAD + src("""
        proc tb-mine {n} { tb-set-node-startcmd $n "echo mine" }
        set a [$ns node]
        tb-mine $a
        $ns run
        """))
    assert doc["nodes"]["a"] == {"start": "echo mine"} and of(notes, "warning") == []


# ---------------------------------------------------------------------------------------------
# NS constructs not carried over, unknown commands, the end of the file


def test_events_agents_and_puts_are_noted():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]; set b [$ns node]
        set l [$ns duplex-link $a $b 10Mb 0ms DropTail]
        set udp [new Agent/UDP]
        $ns attach-agent $a $udp
        set cbr [new Application/Traffic/CBR]
        $cbr set packetSize_ 500
        $ns at 10.0 "$cbr start"
        puts "building done"
        set prog [new Program $ns]
        $ns color 1 Blue
        $ns run
        """))
    traffic = ("NS traffic agents and applications (Emulab's traffic generators) are not carried over: run the traffic from "
               "the nodes' start commands")
    assert of(notes, "warning") == [
        (5, "new Agent/UDP: %s; the object and its uses are ignored" % traffic),
        (6, "$ns attach-agent: %s" % traffic),
        (7, "new Application/Traffic/CBR: %s; the object and its uses are ignored" % traffic),
        (9, "$ns at: events are not carried over yet; the event at 10.0 is ignored"),
        (11, "new Program: Emulab program agents run through its event system, which is not carried over: put the command in "
             "tb-set-node-startcmd (the node's start:); the object and its uses are ignored"),
        (12, "$ns color: not an Emulab command (Emulab ignores it too); the object and its uses are ignored"),
    ]
    assert (10, "puts: the NS file's output is not shown (ignored)") in of(notes, "info")
    model.validate(doc)


@pytest.mark.parametrize("line, message", [
    ("$ns make-cloud \"$a $b\" 10Mb 10ms", "$ns make-cloud is not supported: it builds topology this importer cannot carry over"),
    ("$a add-route $b $b", "$a add-route: manual routes are not supported; use `$ns rtproto Static` or add the route in the "
                           "node's start command"),
    ("$ns duplex-link $a $a 10Mb 0ms DropTail", "duplex-link: both ends are node a"),
    ("$ns duplex-link $a nowhere 10Mb 0ms DropTail", "duplex-link: 'nowhere' is not a node"),
    ("$ns make-lan \"$a $b $a\" 10Mb 0ms", "make-lan: node a is listed twice"),
    ("tb-set-node-os $l FBSD", "tb-set-node-os: 'l' is not a node"),
])
def test_constructs_that_change_the_topology_are_errors(line, message):
    text = HEAD + "set a [$ns node]; set b [$ns node]\nset l [$ns duplex-link $a $b 10Mb 0ms DropTail]\n%s\n$ns run\n" % line
    assert of(failure(text), "error") == [(5, message)]


@pytest.mark.parametrize("line, message", [
    ("lreverse {a b}", 'invalid command name "lreverse": not in the Tcl subset this importer evaluates (see its '
                       'documentation), nor an NS or Emulab command'),
    ("$a frobnicate", 'node a has no method "frobnicate" here'),
    ("$l frobnicate", 'link l has no method "frobnicate" here'),
    ("$ns duplex-link $a $b 10Mb", 'wrong # args: should be "$ns duplex-link node1 node2 bandwidth delay queue"'),
    ("tb-set-node-os $a", 'wrong # args: should be "tb-set-node-os node os ?parentos?"'),
    ("set set [$ns node]", "set set: Emulab would name the new node 'set', which is a command; use another variable"),
])
def test_unknown_commands_are_errors_with_the_line(line, message):
    text = HEAD + "set a [$ns node]; set b [$ns node]\nset l [$ns duplex-link $a $b 10Mb 0ms DropTail]\n%s\n$ns run\n" % line
    assert of(failure(text), "error") == [(5, message)]


def test_errors_after_an_error_in_a_tb_command_are_all_reported():
    notes = failure(HEAD + "set a [$ns node]\ntb-set-node-os nope X\ntb-set-ip-lan $a nolan 10.0.0.1\n$ns run\n")
    assert of(notes, "error") == [(4, "tb-set-node-os: 'nope' is not a node"), (5, "tb-set-ip-lan: 'nolan' is not a LAN")]


def test_commands_after_run_are_ignored_and_a_missing_run_is_a_warning():
    doc, notes = convert(HEAD + "set a [$ns node]\n$ns run\nset b [$ns node]\n")
    assert list(doc["nodes"]) == ["a"]
    assert of(notes, "warning") == [(5, "commands after `$ns run` (line 4) are ignored, as Emulab ignores them")]
    doc, notes = convert(HEAD + "set a [$ns node]\n")
    assert of(notes, "warning") == [(None, "no `$ns run`: Emulab refuses an NS file without it; converted anyway")]


def test_a_file_without_nodes_is_an_error():
    assert of(failure(HEAD + "$ns run\n"), "error") == [(None, "the NS file creates no node (`$ns node`)")]


# ---------------------------------------------------------------------------------------------
# Limits and options


def test_max_steps_stops_a_loop_that_never_ends():
    notes = failure(HEAD + "set a [$ns node]\nset i 0\nwhile {1} {\n    incr i\n}\n", max_steps=1000)
    assert of(notes, "error") == [(6, "the NS file evaluates more than 1000 commands (option max_steps): stopped here; "
                                      "a loop that never ends? raise max_steps if the file is right")]


def test_max_steps_counts_empty_loop_bodies_too():
    notes = failure("while 1 {}\n", max_steps=500)
    assert of(notes, "error") == [(1, "the NS file evaluates more than 500 commands (option max_steps): stopped here; "
                                      "a loop that never ends? raise max_steps if the file is right")]


def test_max_nodes_stops_a_file_that_builds_too_many():
    notes = failure(HEAD + "for {set i 0} {$i < 100} {incr i} {\n    set n($i) [$ns node]\n}\n$ns run\n", max_nodes=10)
    assert of(notes, "error") == [(4, "the NS file creates more than 10 nodes (option max_nodes): stopped here; raise "
                                      "max_nodes if the file is right")]


def test_default_limits_come_from_importers(monkeypatch):
    monkeypatch.setattr(importers, "DEFAULT_MAX_STEPS", 300)
    monkeypatch.setattr(importers, "DEFAULT_MAX_NODES", 5)
    notes = failure("set i 0\nwhile {1} { incr i }\n")
    assert of(notes, "error") == [(2, "the NS file evaluates more than 300 commands (option max_steps): stopped here; a loop "
                                      "that never ends? raise max_steps if the file is right")]
    notes = failure(HEAD + "foreach i {1 2 3 4 5 6} { set n($i) [$ns node] }\n")
    assert of(notes, "error") == [(3, "the NS file creates more than 5 nodes (option max_nodes): stopped here; raise "
                                      "max_nodes if the file is right")]


@pytest.mark.parametrize("options, message", [
    ({"max_nodes": 0}, "option max_nodes must be a positive integer, got 0"),
    ({"max_steps": "many"}, "option max_steps must be a positive integer, got 'many'"),
    ({"os_images": ["x"]}, "option os_images must map OS names (of tb-set-node-os) to image names, got ['x']"),
])
def test_bad_options(options, message):
    assert of(failure(HEAD + "set a [$ns node]\n$ns run\n", **options), "error") == [(None, message)]


def test_name_and_project_options():
    doc, _notes = convert(HEAD + "set a [$ns node]\n$ns run\n", path="/x/My_Exp.ns", name="other", project="proj")
    assert doc["name"] == "other" and doc["project"] == "proj"
    doc, _notes = convert(HEAD + "set a [$ns node]\n$ns run\n", path="/x/My_Exp.ns")
    assert doc["name"] == "my-exp" and "project" not in doc
    model.validate(doc)


def test_load_detects_ns_files_and_strict_turns_warnings_into_errors(tmp_path):
    path = tmp_path / "small.tcl"
    path.write_text(HEAD + "set a [$ns node]\ntb-set-hardware $a pc3000\n$ns run\n")
    fmt, doc, notes = importers.load(str(path))
    assert fmt == "ns" and list(doc["nodes"]) == ["a"]
    with pytest.raises(ImportFailed) as info:
        importers.load(str(path), options={"strict": True})
    assert [(n.line, n.message) for n in info.value.notes if n.level == "error"] == [
        (4, "tb-set-hardware: hardware type 'pc3000' has no container meaning; ignored (strict: warnings are errors)")]


def test_conversion_is_deterministic():
    with open(os.path.join(SOURCES, "dumbbell.ns")) as f:
        text = f.read()
    first, second = convert(text), convert(text)
    assert first[0] == second[0]
    assert [str(n) for n in first[1]] == [str(n) for n in second[1]]


def test_lans_are_renamed_so_that_host_names_stay_distinct():
    doc, notes = convert(HEAD + src("""
        set a [$ns node]
        set a-b [$ns node]
        set b [$ns make-lan "$a ${a-b}" 100Mb 0ms]
        $ns run
        """))
    # Node a on LAN b would be host a-b, the name of the other node: Emulab has no such rule.
    assert list(doc["lans"]) == ["b-2"]
    assert (5, "LAN 'b' is named 'b-2' here: host name 'a-b' (a member on it) would collide with node a-b") in of(notes, "info")
    model.validate(doc)
