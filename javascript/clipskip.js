/* sd-webui-clipskip: only what gradio cannot do by itself.
 *
 * 1. Watch the prompt boxes (#txt2img_prompt / #img2img_prompt, and the negative prompts) and, after a pause in typing,
 *    copy the text into the panel's hidden textbox (.clipskip-prompt-sink): one server call per
 *    pause, not per keystroke.  A slow poll catches programmatic changes (paste, styles).
 * 2. Refresh the panel (hidden .clipskip-refresh button) when the checkpoint option changes or
 *    the pointer comes back to the panel, so model-dependent controls follow the loaded model.
 * 3. "Use N" buttons of the compatibility list (.clipskip-apply) set the CLIP skip slider.
 * 4. Values loaded from a checkpoint's memory turn the panel on (data-clipskip-panel in the status).
 *
 * The one global is `clipskip`; everything else lives in this closure.
 */
var clipskip = (function() {
    "use strict";

    var TABS = ["txt2img", "img2img"];
    var DEBOUNCE_MS = 350;
    var POLL_MS = 1500;
    var HOVER_REFRESH_MS = 4000;
    var HOVER_DELAY_MS = 700;
    var sent = {};
    var timers = {};
    var pending = {};
    var lastHoverRefresh = {};
    var lastModel = null;
    var started = false;

    function root() {
        return typeof gradioApp === "function" ? gradioApp() : document;
    }

    function source(tab) {
        return root().querySelector("#" + tab + "_prompt textarea");
    }

    /** Between the prompt and the negative prompt in the panel's hidden textbox (panel.NEGATIVE_MARK). */
    var NEGATIVE_MARK = "\n\u2063negative prompt\u2063\n";

    function negativeSource(tab) {
        return root().querySelector("#" + tab + "_neg_prompt textarea");
    }

    /** The prompt, and the negative prompt when there is one: the panel lists the files of both. */
    function promptText(tab) {
        var negative = negativeSource(tab);
        var text = source(tab).value;
        return negative && negative.value.trim() ? text + NEGATIVE_MARK + negative.value : text;
    }

    function sink(tab) {
        return root().querySelector(".clipskip-prompt-sink.clipskip-tab-" + tab + " textarea");
    }

    function refreshButton(tab) {
        return root().querySelector("button.clipskip-refresh.clipskip-tab-" + tab) ||
            root().querySelector(".clipskip-refresh.clipskip-tab-" + tab + " button");
    }

    function setValue(input, value) {
        // the native setter, so the framework's bound value sees the change
        var proto = input instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
        Object.getOwnPropertyDescriptor(proto, "value").set.call(input, value);
        if (typeof updateInput === "function") {
            updateInput(input);
        } else {
            input.dispatchEvent(new Event("input", {bubbles: true}));
        }
    }

    /** Copy the prompt into the panel when it changed since the last copy (or when forced). */
    function push(tab, force) {
        var from = source(tab);
        var to = sink(tab);
        if (!from || !to) {
            return false;
        }
        var text = promptText(tab);
        if (!force && text === sent[tab]) {
            return false;
        }
        sent[tab] = text;
        if (to.value !== text) {
            setValue(to, text);
            return true;
        }
        return false;
    }

    function schedule(tab) {
        clearTimeout(timers[tab]);
        pending[tab] = true;
        timers[tab] = setTimeout(function() {
            pending[tab] = false;
            push(tab, false);
        }, DEBOUNCE_MS);
    }

    /** Push the prompt now and ask the server for a fresh panel (model, values, files). */
    function refresh(tab) {
        clearTimeout(timers[tab]);
        pending[tab] = false;
        push(tab, false);
        var button = refreshButton(tab);
        if (button) {
            button.click();
        }
    }

    function refreshAll() {
        TABS.forEach(refresh);
    }

    function setSlider(sliderId, value, accordionId) {
        var number = root().querySelector("#" + sliderId + " input[type=number]");
        if (!number) {
            return false;
        }
        if (accordionId) {
            var enable = root().querySelector("#" + accordionId + "-visible-checkbox");
            if (enable && !enable.checked) {
                enable.click();
            }
        }
        setValue(number, String(value));
        number.dispatchEvent(new Event("change", {bubbles: true}));
        number.dispatchEvent(new Event("blur"));
        return true;
    }

    /** Tick or untick the panel once when the status asks for it (values loaded from a checkpoint). */
    function switchPanel(tab) {
        var asked = root().querySelector(".clipskip-status.clipskip-tab-" + tab + " [data-clipskip-panel]");
        if (!asked) {
            return;
        }
        var want = asked.dataset.clipskipPanel === "on";
        asked.removeAttribute("data-clipskip-panel");
        var box = root().querySelector("#" + asked.dataset.clipskipAccordion + "-visible-checkbox");
        if (box && box.checked !== want) {
            box.click();
        }
    }

    function tabOf(element) {
        for (var i = 0; i < TABS.length; i++) {
            if (element.closest("[id^='script_" + TABS[i] + "_']")) {
                return TABS[i];
            }
        }
        return null;
    }

    function onClick(event) {
        var apply = event.target.closest && event.target.closest(".clipskip-apply");
        if (apply) {
            event.preventDefault();
            setSlider(apply.dataset.clipskipSlider, apply.dataset.clipskipValue, apply.dataset.clipskipAccordion);
        }
    }

    function onPointerDown(event) {
        // the layer explorer must see the text as it is now, not as it was at the last pause
        var explore = event.target.closest && event.target.closest(".clipskip-explore");
        if (explore) {
            TABS.forEach(function(tab) {
                if (explore.classList.contains("clipskip-tab-" + tab)) {
                    clearTimeout(timers[tab]);
                    pending[tab] = false;
                    push(tab, false);
                }
            });
        }
    }

    function onPointerOver(event) {
        var panel = event.target.closest && event.target.closest(".input-accordion[id^='script_'][id$='_clip_skip_enabled']");
        if (!panel) {
            return;
        }
        var tab = tabOf(panel);
        var now = Date.now();
        if (tab && now - (lastHoverRefresh[tab] || 0) > HOVER_REFRESH_MS) {
            lastHoverRefresh[tab] = now;
            // later than a click that comes with the pointer, so this refresh reads the new state
            setTimeout(function() {
                refresh(tab);
            }, HOVER_DELAY_MS);
        }
    }

    var PASTE_NOTES_MS = 30000;
    var pasteNotes = {};

    /** What a paste translated stays in the status (the refresh the pasted values start would
     * replace it within a second) until the user changes one of the panel's values, or 30 s. */
    function keepPasteNotes(tab, status) {
        var notes = status.querySelector(".clipskip-paste-notes");
        var kept = pasteNotes[tab];
        if (notes) {
            if (!kept || kept.html !== notes.outerHTML) {
                pasteNotes[tab] = {html: notes.outerHTML, at: Date.now()};
            }
            return;
        }
        var summary = status.querySelector(".clipskip-summary");
        if (kept && summary && Date.now() - kept.at < PASTE_NOTES_MS) {
            summary.insertAdjacentHTML("beforeend", kept.html);
        }
    }

    function onUserInput(event) {
        if (!event.isTrusted) {
            return;
        }
        TABS.forEach(function(tab) {
            if (event.target.closest && event.target.closest("[id^='script_" + tab + "_clip_skip']")) {
                delete pasteNotes[tab];
            }
        });
    }

    /** Act on a status that asks to turn the panel on at once: a later refresh replaces it. */
    function observeStatus(tab) {
        var status = root().querySelector(".clipskip-status.clipskip-tab-" + tab);
        if (!status || status.dataset.clipskipObserved || typeof MutationObserver !== "function") {
            return;
        }
        status.dataset.clipskipObserved = "1";
        new MutationObserver(function() {
            switchPanel(tab);
            keepPasteNotes(tab, status);
        }).observe(status, {childList: true, subtree: true, attributes: true});
    }

    function watch(tab) {
        observeStatus(tab);
        var from = source(tab);
        if (!from || from.dataset.clipskipWatched) {
            return;
        }
        from.dataset.clipskipWatched = "1";
        [from, negativeSource(tab)].forEach(function(box) {
            if (box) {
                box.addEventListener("input", function() {
                    schedule(tab);
                });
            }
        });
        refresh(tab);
    }

    function setup() {
        if (started) {
            return;
        }
        started = true;
        TABS.forEach(watch);
        var app = root();
        app.addEventListener("click", onClick);
        app.addEventListener("input", onUserInput, true);
        app.addEventListener("pointerdown", onPointerDown, true);
        app.addEventListener("pointerover", onPointerOver);
        setInterval(function() {
            TABS.forEach(function(tab) {
                watch(tab);
                switchPanel(tab);
                var status = root().querySelector(".clipskip-status.clipskip-tab-" + tab);
                if (status && source(tab) && !status.textContent.trim()) {
                    refresh(tab); // not filled yet: the first click came before gradio listened
                } else if (status && status.querySelector("[data-clipskip-loading]")) {
                    refresh(tab); // no model yet, or the host is loading one: ask again
                } else if (!pending[tab]) {
                    push(tab, false);
                }
            });
        }, POLL_MS);
    }

    function onOptions() {
        var model = typeof opts === "object" && opts ? opts.sd_model_checkpoint : null;
        if (lastModel !== null && model !== lastModel) {
            setTimeout(refreshAll, 500);
        }
        lastModel = model;
    }

    if (typeof onUiLoaded === "function") {
        onUiLoaded(setup);
    } else {
        document.addEventListener("DOMContentLoaded", setup);
    }
    if (typeof onOptionsChanged === "function") {
        onOptionsChanged(onOptions);
    }

    return {refresh: refresh, refreshAll: refreshAll, push: push, setSlider: setSlider};
})();
