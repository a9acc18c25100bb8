/* Stand-in for the helpers of the WebUI's script.js (A1111 v1.10.1 / Forge; the same API in both):
 * gradioApp(), onUiLoaded(), onUiUpdate(), onOptionsChanged(), updateInput().
 * Our own minimal re-implementation for the browser tests, not the host's code. */
var standinUiLoaded = [];
var standinUiUpdate = [];
var standinOptionsChanged = [];
var standinLoadedDone = false;

function gradioApp() {
    var app = document.getElementsByTagName("gradio-app");
    var root = app.length ? (app[0].shadowRoot || app[0]) : document;
    return root.querySelector ? root : document;
}

function onUiLoaded(callback) {
    standinUiLoaded.push(callback);
}

function onUiUpdate(callback) {
    standinUiUpdate.push(callback);
}

function onOptionsChanged(callback) {
    standinOptionsChanged.push(callback);
}

function updateInput(target) {
    var event = new Event("input", {bubbles: true});
    Object.defineProperty(event, "target", {value: target});
    target.dispatchEvent(event);
}

function standinRun(callbacks, argument) {
    callbacks.forEach(function(callback) {
        try {
            callback(argument);
        } catch (error) {
            console.error("standin callback failed", error);
        }
    });
}

/* The hosts run onUiLoaded callbacks once the prompt box exists (script.js watches the DOM). */
document.addEventListener("DOMContentLoaded", function() {
    var observer = new MutationObserver(function(mutations) {
        if (!standinLoadedDone && gradioApp().querySelector("#txt2img_prompt textarea")) {
            standinLoadedDone = true;
            standinRun(standinUiLoaded);
        }
        standinRun(standinUiUpdate, mutations);
    });
    observer.observe(gradioApp(), {childList: true, subtree: true});
});
