"""Request templates for the synthetic corpus (data only; corpus.py holds the logic).

Every intent has a ``train`` list and a disjoint ``heldout`` list. A template is a string with
``{slot}`` fields; a leading mark gives its form, which decides the fillers it may take:

    "!"  imperative ("set a timer ...")  -> polite prefixes ("could you", "pls", "I'd like you to")
    "?"  question ("what's the weather ...") -> casual prefixes only, often ends with "?"
    ""   statement / telegraphic ("paris weather") -> casual prefixes only
"""

from __future__ import annotations

WEATHER = {
    "train": [
        "?what's the weather in {city}", "?what's the weather like in {city}",
        "?how's the weather in {city}", "?what is the weather in {city} right now",
        "{city} weather", "weather in {city}", "weather {city}", "!check the weather in {city}",
        "!tell me the weather in {city}", "!get me the weather for {city}",
        "!look up the weather in {city}", "?is it raining in {city}", "?is it sunny in {city} today",
        "?do I need an umbrella in {city}", "?do I need a jacket in {city} today",
        "?how hot is it in {city}", "?how cold is it in {city}", "?what's the temperature in {city}",
        "?what's the temp in {city}", "temperature in {city}", "current weather in {city}",
        "?what's it like outside in {city}", "?any rain in {city}", "!give me the {city} weather",
        "?how warm is it in {city} at the moment", "?what are the conditions in {city}",
        "?I'm flying to {city} tomorrow, what's the weather like there", "!weather check for {city}",
        "?is it nice out in {city}", "?how's {city} looking weather wise",
        "!show me the weather in {city}", "?what's the forecast for {city}",
        "?is it windy in {city}", "?is it snowing in {city}", "?what's the weather doing in {city}",
        "?weather for {city}", "?hows the weather over in {city}", "!find the weather in {city}",
        "?what's the weather like in {city} today", "?is it cold in {city} right now",
        "?what's the weather looking like in {city}", "I wonder what the weather's like in {city}",
        "?how's the weather over there in {city}", "?what's the weather in {city} at the moment",
    ],
    "heldout": [
        "?could you find out what the weather's like over in {city}",
        "?how's it looking outside in {city}", "{city} - weather?", "?is it t-shirt weather in {city}",
        "?should I bring a coat to {city}", "!pull up the current weather for {city}",
        "?what's the sky doing in {city} today", "?any idea what the weather is in {city}",
        "?what kind of weather are they having in {city}", "!fetch {city}'s weather",
        "!report the weather in {city}", "?is it hot or cold in {city} now",
        "?what's the outlook in {city}", "weather conditions {city} pls",
    ],
}
# appended to a weather request: (surface, unit)
WEATHER_UNIT = {
    "train": [(" in fahrenheit", "fahrenheit"), (" in °F", "fahrenheit"),
              (" in degrees fahrenheit", "fahrenheit"), (" in F", "fahrenheit"),
              (", fahrenheit please", "fahrenheit"), (" (in fahrenheit)", "fahrenheit"),
              (", in fahrenheit", "fahrenheit"), (" in farenheit", "fahrenheit"),
              (" in celsius", "celsius"), (" in °C", "celsius"),
              (" in degrees celsius", "celsius"), (", celsius please", "celsius")],
    "heldout": [(" using fahrenheit", "fahrenheit"), (" - give it to me in fahrenheit", "fahrenheit"),
                (" in degrees F", "fahrenheit"), (" in fahrenheit units", "fahrenheit"),
                (" using celsius", "celsius"), (" in degrees C", "celsius")],
}

TIMER = {
    "train": [
        "!set a timer for {dur}", "!set a {adur} timer", "!start a timer for {dur}",
        "!start a {adur} timer", "timer {dur}", "{dur} timer", "timer for {dur}",
        "!put a timer on for {dur}", "!time {dur}", "!count down {dur}", "!countdown {dur}",
        "!set the timer to {dur}", "!make a timer for {dur}", "!create a {adur} timer",
        "!give me a {adur} timer", "?can I get a timer for {dur}", "!let me know when {dur} is up",
        "!alert me in {dur}", "!wake me up in {dur}", "I need a {adur} timer",
        "!start counting down from {dur}", "!set me a timer, {dur}", "!buzz me in {dur}",
        "!run a {adur} timer", "!do a {adur} timer", "!set an alarm for {dur} from now",
        "{adur} timer", "!timer on {dur}", "!set a timer {dur}", "!start the timer for {dur}",
    ],
    "heldout": [
        "!set up a countdown of {dur}", "!could you time me for {dur}",
        "?how about a {adur} countdown", "!tell me when {dur} are over",
        "!start the clock for {dur}", "{dur} on the clock", "!kick off a {adur} timer",
        "!begin a timer of {dur}", "I want a countdown timer set to {dur}",
        "!get a {adur} timer going", "!launch a timer for {dur}",
    ],
}
TIMER_LABELED = {
    "train": [
        "!set a timer for {dur} for the {label}", "!set a {adur} timer for the {label}",
        "!set a {label} timer for {dur}", "!start a {adur} {label} timer", "{label} timer {dur}",
        "{label} timer, {dur}", "!set a timer called {label} for {dur}",
        "!set a timer named {label} for {dur}", "!make a {adur} timer and call it {label}",
        "!set a timer for {dur} and label it {label}", "!timer for the {label}, {dur}",
        "!set a {adur} timer labeled {label}", "!start a timer for my {label}, {dur}",
        "the {label} needs {dur}, set a timer", "!put a {adur} timer on the {label}",
        "!time the {label} for {dur}", "{dur} for the {label}", "!set a timer for the {label}: {dur}",
    ],
    "heldout": [
        "!get a {adur} timer going for the {label}", "the {label} needs a timer of {dur}",
        "!track {dur} for the {label}", "!set up a {label} countdown for {dur}",
        "{dur} countdown for my {label}", "!start timing the {label}, {dur}",
    ],
}

LIGHTS_ON = {
    "train": [
        "!turn on the {room} lights", "!turn the {room} lights on", "!switch on the lights in the {room}",
        "!switch the {room} light on", "lights on in the {room}", "{room} lights on",
        "!put the lights on in the {room}", "!turn the light on in the {room}", "!light up the {room}",
        "!flip the {room} lights on", "!switch {room} lights on", "!get the lights on in the {room}",
        "!power on the {room} lights", "!turn on the lights in the {room}", "!turn on the {room} lamp",
        "it's too dark in the {room}, turn the lights on", "!activate the {room} lights",
        "{room} light on", "!lights on, {room}", "!turn on {room} lights",
        "I want the {room} lights on", "?can we get some light in the {room}",
        "!switch on the {room} lamp", "!turn the lights on in the {room}",
    ],
    "heldout": [
        "!illuminate the {room}", "!bring the lights up in the {room}",
        "!switch on the {room} lighting", "{room}: lights on", "I could use some light in the {room}",
    ],
}
LIGHTS_OFF = {
    "train": [
        "!turn off the {room} lights", "!turn the {room} lights off", "!switch off the lights in the {room}",
        "lights off in the {room}", "{room} lights off", "!kill the lights in the {room}",
        "!shut off the {room} lights", "!turn the light off in the {room}", "!cut the lights in the {room}",
        "!power off the {room} lights", "!switch the {room} lamp off", "!lights out in the {room}",
        "!turn off the lights in the {room}", "!get the {room} lights off", "{room} light off",
        "!turn off {room} lights", "!switch the lights off in the {room}", "nobody's in the {room}, lights off",
        "I want the {room} lights off", "!switch the {room} lights off", "!turn the lights off in the {room}",
    ],
    "heldout": [
        "!darken the {room}", "!turn off all the lights in the {room}", "{room} lighting off",
        "!shut the {room} lights", "!put the {room} lights out",
    ],
}
LIGHTS_LEVEL = {
    "train": [
        "!set the {room} lights to {pct}", "!dim the {room} lights to {pct}",
        "!turn on the {room} lights at {pct}", "!brighten the {room} lights to {pct}",
        "{room} lights {pct}", "{room} lights at {pct}", "!put the {room} lights at {pct}",
        "!set brightness in the {room} to {pct}", "!change the {room} light brightness to {pct}",
        "!make the {room} lights {pct}", "!turn the {room} lights up to {pct}",
        "!turn the {room} lights down to {pct}", "!lights in the {room} to {pct}",
        "!set the {room} lamp to {pct} brightness", "!dim the lights in the {room} to {pct}",
        "!{room} lights to {pct} please",
    ],
    "heldout": [
        "!lower the {room} lights to {pct}", "!adjust the {room} lights to {pct}",
        "{room} brightness {pct}", "!take the {room} lights down to {pct}",
        "!bump the {room} lights up to {pct}",
    ],
}

THERMOSTAT = {
    "train": [
        "!set the thermostat to {temp}", "thermostat to {temp}", "thermostat {temp}",
        "!set the heating to {temp}", "!turn the heat up to {temp}", "!turn the heat down to {temp}",
        "!make it {temp} in here", "!change the temperature to {temp}",
        "!put the thermostat on {temp}", "!set the temperature to {temp}", "!heat the house to {temp}",
        "!adjust the thermostat to {temp}", "I want it at {temp}", "!crank the heat to {temp}",
        "!bring the temperature down to {temp}", "!cool it down to {temp}",
        "!set the temp to {temp}", "!thermostat to {temp} please",
        "I'm freezing, set the heat to {temp}", "!bump the heating up to {temp}",
        "!I want the house at {temp}", "!warm it up to {temp}", "!drop the temperature to {temp}",
        "it's too hot, make it {temp}", "!change the thermostat to {temp}",
    ],
    "heldout": [
        "!get the house to {temp}", "!keep it at {temp}", "!raise the thermostat to {temp}",
        "!lower the thermostat to {temp}", "!program the thermostat for {temp}",
        "!nudge the thermostat to {temp}",
    ],
}
THERMOSTAT_ROOM = {
    "train": [
        "!set the {room} thermostat to {temp}", "!set the {room} to {temp}", "!make the {room} {temp}",
        "!heat the {room} to {temp}", "!warm up the {room} to {temp}", "!cool the {room} down to {temp}",
        "{room} thermostat {temp}", "{room} to {temp}", "!change the {room} temperature to {temp}",
        "!set the temperature in the {room} to {temp}", "!put the heating in the {room} on {temp}",
        "I'd like the {room} at {temp}", "!turn the {room} heat up to {temp}",
        "!make it {temp} in the {room}", "!thermostat in the {room} to {temp}",
        "the {room} is cold, set it to {temp}", "!get the {room} up to {temp}",
        "!I want the {room} at {temp}",
    ],
    "heldout": [
        "!could you get the {room} to {temp}", "I'd like it to be {temp} in the {room}",
        "!target {temp} in the {room}", "{temp} in the {room} please", "!have the {room} at {temp}",
    ],
}

REMINDER = {
    "train": [
        "!remind me to {task} {when}", "!remind me {when} to {task}", "{when}, remind me to {task}",
        "!set a reminder to {task} {when}", "!add a reminder to {task} {when}",
        "!set a reminder for {when} to {task}", "!create a reminder: {task} {when}",
        "reminder: {task} {when}", "reminder to {task} {when}", "!don't let me forget to {task} {when}",
        "I need to {task} {when}, remind me", "!ping me {when} to {task}",
        "!remind me that I need to {task} {when}", "!remind me {when} that I have to {task}",
        "note to self: {task} {when}", "!put a reminder in for {when} to {task}",
        "!schedule a reminder to {task} {when}", "!set up a reminder for me to {task} {when}",
        "!nudge me {when} to {task}", "!give me a reminder {when} to {task}",
        "!alert me {when} to {task}", "!remind me: {task}, {when}", "!remind me to {task}, {when}",
        "!make a reminder to {task} {when}", "!add reminder {task} {when}",
        "{when} I need to {task}, set a reminder", "!reminder for {when}: {task}",
        "!can you make sure I remember to {task} {when}", "!set a reminder {when}: {task}",
        "!I want a reminder to {task} {when}", "!put {task} in my reminders for {when}",
        "!remind me, {when}, to {task}", "!send me a reminder {when} to {task}",
        "I have to {task} {when}, don't let me forget", "!add a reminder for {when}: {task}",
        "?could you remind me to {task} {when}", "!quick reminder to {task} {when}",
    ],
    "heldout": [
        "!make a note to remind me to {task} {when}", "!jog my memory {when} about needing to {task}",
        "I'll need a reminder {when} to {task}", "!tell me to {task} {when}",
        "!don't forget to remind me to {task} {when}", "{when} I have to {task}, can you remind me",
        "!drop me a reminder to {task} {when}", "!set an alert for {when}: {task}",
        "I gotta {task} {when}, remind me", "!help me remember to {task} {when}",
    ],
}

CONVERT = {
    "train": [
        "!convert {v} {f} to {t}", "!convert {v} {f} into {t}", "?how many {t} is {v} {f}",
        "?how many {t} are in {v} {f}", "?what's {v} {f} in {t}", "{v} {f} to {t}", "{v} {f} in {t}",
        "?what is {v} {f} in {t}", "?how much is {v} {f} in {t}", "!change {v} {f} to {t}",
        "!turn {v} {f} into {t}", "?{v} {f} is how many {t}", "I have {v} {f}, how much is that in {t}",
        "!convert {f} to {t}: {v}", "!express {v} {f} in {t}", "{v} {f} -> {t}",
        "?what does {v} {f} come to in {t}", "!give me {v} {f} in {t}", "!convert from {f} to {t}, {v}",
        "?{v} {f} equals how many {t}", "{f} to {t}, {v}", "!tell me {v} {f} in {t}",
        "?if something is {v} {f}, how many {t} is that", "?{v} {f} in {t}", "!convert {v}{f} to {t}",
        "?how many {t} would {v} {f} be", "!put {v} {f} in {t}", "?what are {v} {f} in {t}",
        "!I need {v} {f} in {t}", "?do you know how many {t} {v} {f} is", "!calculate {v} {f} in {t}",
        "my recipe says {v} {f}, what's that in {t}", "!convert this to {t}: {v} {f}",
        "?whats {v} {f} in {t}",
    ],
    "heldout": [
        "!translate {v} {f} to {t}", "?roughly how many {t} would {v} {f} be",
        "?what do {v} {f} work out to in {t}", "{v} {f} converted to {t}", "?{v} {f}... in {t}",
        "I need {v} {f} expressed in {t}", "?any idea how many {t} {v} {f} is",
        "!switch {v} {f} to {t}", "!work out {v} {f} in {t}", "{v} of {f} in {t} please",
    ],
}

# calculate: (template, expression) -- the expression uses the same slots, canonical spacing
CALC = {
    "train": [
        ("?what's {a} times {b}", "{a} * {b}"), ("{a} times {b}", "{a} * {b}"),
        ("{a} x {b}", "{a} * {b}"), ("!multiply {a} by {b}", "{a} * {b}"),
        ("?what is {a} multiplied by {b}", "{a} * {b}"), ("!calculate {a} times {b}", "{a} * {b}"),
        ("?what's the product of {a} and {b}", "{a} * {b}"), ("?what's {a} plus {b}", "{a} + {b}"),
        ("!add {a} and {b}", "{a} + {b}"), ("?what's the sum of {a} and {b}", "{a} + {b}"),
        ("{a} plus {b}", "{a} + {b}"), ("{a} minus {b}", "{a} - {b}"),
        ("!subtract {b} from {a}", "{a} - {b}"), ("?what's {a} take away {b}", "{a} - {b}"),
        ("?what is {a} minus {b}", "{a} - {b}"), ("{a} divided by {b}", "{a} / {b}"),
        ("!divide {a} by {b}", "{a} / {b}"), ("?what's {a} over {b}", "{a} / {b}"),
        ("?what is {a} divided by {b}", "{a} / {b}"), ("{p}% of {x}", "{x} * {p} / 100"),
        ("{p} percent of {x}", "{x} * {p} / 100"), ("?what's {p}% of {x}", "{x} * {p} / 100"),
        ("!calculate {p} percent of {x}", "{x} * {p} / 100"),
        ("?what is a {p}% tip on {x}", "{x} * {p} / 100"),
        ("?how much is {p}% of {x}", "{x} * {p} / 100"),
        ("?what's the square root of {x}", "sqrt({x})"), ("sqrt {x}", "sqrt({x})"),
        ("!square root of {x}", "sqrt({x})"), ("{a} to the power of {b}", "{a} ** {b}"),
        ("{a} squared", "{a} ** 2"), ("{a} cubed", "{a} ** 3"),
        ("?what's {a} raised to {b}", "{a} ** {b}"), ("half of {x}", "{x} / 2"),
        ("!double {x}", "{x} * 2"), ("?what's twice {x}", "{x} * 2"),
        ("?what's the average of {a}, {b} and {c}", "({a} + {b} + {c}) / 3"),
        ("?what's the mean of {a} and {b}", "({a} + {b}) / 2"), ("{a} mod {b}", "{a} % {b}"),
        ("?what's the remainder of {a} divided by {b}", "{a} % {b}"),
        ("?how much is {a} times {b}", "{a} * {b}"), ("!work out {a} times {b}", "{a} * {b}"),
    ],
    "heldout": [
        ("?what do you get when you multiply {a} by {b}", "{a} * {b}"),
        ("{a} multiplied with {b}", "{a} * {b}"), ("!figure out {a} plus {b}", "{a} + {b}"),
        ("?{a} less {b} is what", "{a} - {b}"), ("?what's the total of {a} and {b}", "{a} + {b}"),
        ("?{a} to the {b}th power", "{a} ** {b}"), ("?the square root of {x} is what", "sqrt({x})"),
        ("!find {p}% of {x}", "{x} * {p} / 100"), ("?how many is {a} lots of {b}", "{a} * {b}"),
        ("!split {a} {b} ways", "{a} / {b}"), ("?how much is {p} per cent of {x}", "{x} * {p} / 100"),
        ("!triple {x}", "{x} * 3"),
    ],
}
# typed expressions: wrappers around {expr}
CALC_EXPR = {
    "train": ["?what's {expr}", "!calculate {expr}", "{expr}", "{expr} =", "!compute {expr}",
              "?what does {expr} equal", "!solve {expr}", "!evaluate {expr}",
              "?how much is {expr}", "?what is {expr}", "{expr} = ?", "!calc {expr}"],
    "heldout": ["!crunch {expr}", "!tell me what {expr} is", "?what's the answer to {expr}",
                "!do the math: {expr}", "?{expr} comes to what"],
}

# no_tool: intent -> (canonical answer, train templates, held-out templates)
CAPABILITIES = ("I can check the weather, set timers, switch lights, set the thermostat, add "
                "reminders, convert units and calculate.")
NO_TOOL = {
    "greeting": ("Hi! How can I help?", [
        "hi", "hello", "hey", "hey there", "hiya", "good morning", "good afternoon", "good evening",
        "morning", "yo", "howdy", "hello there", "hi there", "heya", "greetings", "hey assistant",
        "hi!", "helo", "hii", "hey hey", "good morning to you", "sup", "hallo", "hey you",
        "evening", "hello assistant",
    ], ["hey, good to see you", "hi hi", "well hello", "top of the morning", "hullo",
        "hey, anyone there", "hello hello", "morning there", "ahoy", "g'day"]),
    "thanks": ("You're welcome!", [
        "thanks", "thank you", "thx", "ty", "thanks a lot", "thank you so much", "cheers",
        "great, thanks", "perfect, thank you", "awesome thanks", "thanks!", "much appreciated",
        "thank u", "nice, thanks", "cool thanks", "thanks a bunch", "ok thanks", "thanks mate",
        "many thanks", "appreciate it", "tysm", "thank you very much", "brilliant, thanks",
        "that's great, thank you", "thanks so much", "lovely, thanks",
    ], ["you're a star, thanks", "thanks heaps", "much obliged", "grazie, thanks",
        "ta", "that's perfect, cheers", "super, thank you kindly", "thank you, that helps",
        "appreciate the help", "nice one, thanks"]),
    "capabilities": (CAPABILITIES, [
        "what can you do", "what can you do?", "help", "what are your skills",
        "what do you do", "what can I ask you", "how can you help me", "what are you able to do",
        "list your features", "what commands do you know", "what things can you do",
        "what are your capabilities", "what can you help with", "show me what you can do",
        "what kind of things can you do", "what tools do you have", "help me out, what can you do",
        "what can u do", "what do you know how to do", "what functions do you have", "options?",
        "what are you good for", "what should I ask you", "menu", "what's possible here",
        "what services do you offer",
    ], ["what are you capable of", "give me a rundown of your abilities", "what's in your toolbox",
        "which tasks can you handle", "what sort of stuff do you do", "how do I use you",
        "what features do you support", "what am I able to ask", "explain what you can do",
        "capabilities?"]),
    "identity": ("I'm a small on-device assistant. " + CAPABILITIES, [
        "who are you", "what are you", "who are you?", "what's your name", "are you a robot",
        "are you human", "are you an ai", "who made you", "what is this", "introduce yourself",
        "tell me about yourself", "what kind of assistant are you", "are you chatgpt",
        "who am I talking to", "are you siri", "what model are you", "are you real",
        "who built you", "what are you exactly", "are you alexa", "are you a person",
        "what is your name", "whats ur name", "who's this", "are you a bot", "what r u",
    ], ["who exactly am I speaking with", "are you some kind of ai", "what sort of program are you",
        "do you have a name", "are you google assistant", "who created you",
        "identify yourself", "are you a chatbot", "am I talking to a machine",
        "what are you, a computer?"]),
    "goodbye": ("Goodbye!", [
        "bye", "goodbye", "see you", "see ya", "bye bye", "good night", "later", "cya",
        "talk to you later", "that's all", "that's all for now", "nothing else", "I'm done",
        "ok bye", "night", "gotta go", "see you later", "farewell", "bye for now",
        "that's it, bye", "ttyl", "catch you later", "signing off", "have a good one",
        "all done", "no that's all",
    ], ["peace out", "I'm off", "that'll be all", "over and out", "goodnight then",
        "laters", "so long", "done for today", "adios", "catch ya"]),
    "how_are_you": ("I'm doing well, thanks! How can I help?", [
        "how are you", "how are you doing", "how's it going", "what's up", "how are things",
        "you ok", "how r u", "how are you today", "how's your day", "hows it going",
        "how do you do", "are you well", "how have you been", "what's new", "how's life",
        "you good?", "how are you feeling", "how's everything", "everything ok with you",
        "how you doing", "hey how are you", "hi, how are you", "how's your day going",
        "are you doing ok", "how is it going", "wassup",
    ], ["how's tricks", "how goes it", "you alright", "how are you holding up",
        "all good with you", "how's your morning been", "what's cracking",
        "how are you keeping", "how's the day treating you", "feeling ok today?"]),
}

UNSUPPORTED_REPLY = ("Sorry, I can't do that here. I can check the weather, set timers, switch "
                     "lights, set the thermostat, add reminders, convert units and calculate.")
UNSUPPORTED_ACTIONS = {
    "train": [
        "lock the front door", "lock the door", "unlock the back door", "play some music",
        "play my workout playlist", "play jazz", "order a pizza", "order pizza", "call mom",
        "call my brother", "open the garage", "open the garage door", "close the garage",
        "vacuum the living room", "start the vacuum", "turn on the tv", "turn off the tv",
        "start the dishwasher", "start the washing machine", "open the blinds", "close the curtains",
        "text John that I'm late", "send an email to my boss", "set an alarm for 7am",
        "wake me up at 6:30", "arm the security system", "disarm the alarm", "turn up the volume",
        "book a taxi", "order an uber", "show me the front door camera", "start the coffee maker",
        "make me a coffee", "turn on the fan", "run the sprinklers", "lock the car",
        "check my email", "read my messages", "what's on my calendar today", "navigate home",
        "take a photo", "open the window", "feed the dog", "start the car", "order groceries",
        "add milk to my shopping list", "pause the music", "skip this song", "turn on the oven",
        "preheat the oven to 200", "mute the tv", "record the game tonight", "water the lawn",
        "open the front gate", "call an ambulance", "buy concert tickets", "pay my electricity bill",
        "turn on the robot mop", "find my phone", "charge the car", "turn on the hot tub",
        "close the windows", "make a dinner reservation",
        "post this on instagram", "start the dryer", "turn on the kettle",
    ],
    "heldout": [
        "unlock the front door for the cleaner", "put on some lo-fi beats", "order sushi for two",
        "ring my sister", "raise the garage door", "run the roomba", "switch the tv to channel 4",
        "lower the blinds in the bedroom", "send a whatsapp to Dave", "schedule an alarm for 5:45",
        "turn on the security cameras", "turn the volume down", "get me a cab", "brew some tea",
        "start the robot lawnmower", "open the sunroof", "turn on the radio", "check my bank balance",
        "turn on the air purifier", "bolt the door",
    ],
}
UNSUPPORTED_WRAP = {
    "train": ["{act}", "!can you {act}", "!please {act}", "!I want you to {act}", "!{act} now",
              "!{act} for me", "!could you {act}", "!{act} please", "!hey {act}",
              "I need you to {act}", "?are you able to {act}", "!go ahead and {act}",
              "?can u {act}", "!{act} pls", "!quickly {act}", "!would you {act}",
              "I'd like you to {act}", "!{act} asap", "?is it possible to {act}",
              "!just {act}", "!{act}, thanks", "!yo {act}", "!ok {act}", "!{act} real quick",
              "?could you please {act}"],
    "heldout": ["!would you mind if you {act}", "?any chance you could {act}",
                "!I'd love it if you could {act}", "!be a dear and {act}",
                "?think you can {act}", "!{act} whenever you can", "!sorry, can you {act}",
                "!mind doing something for me: {act}", "!I was hoping you'd {act}",
                "!assistant, {act}"],
}

CLARIFY = {
    "get_weather": ("Which city?", [
        "what's the weather", "weather", "how's the weather", "is it raining", "weather please",
        "what's the weather like", "check the weather", "how cold is it outside",
        "what's the temperature outside", "do I need an umbrella"],
        ["how's it looking outside", "what's the weather doing", "is it nice out"]),
    "set_timer": ("How long should the timer be?", [
        "set a timer", "start a timer", "timer", "timer please", "I need a timer",
        "can you set a timer", "set up a timer", "start a countdown", "new timer",
        "make a timer"], ["get a timer going", "countdown please", "I want a timer"]),
    "set_lights": ("Which room?", [
        "turn on the lights", "turn off the lights", "lights on", "lights off", "switch the lights on",
        "kill the lights", "turn the light off", "switch off the light", "lights on please",
        "turn the lights on please"], ["lights!", "can I get some light", "turn the lamp on"]),
    "set_thermostat": ("What temperature should I set?", [
        "set the thermostat", "change the thermostat", "adjust the temperature", "thermostat",
        "change the temperature", "set the heating", "it's cold in here, turn up the heat",
        "I'm too hot, change the thermostat", "set the temp", "thermostat please"],
        ["fix the thermostat", "I'm freezing", "the heating needs changing"]),
    "add_reminder": ("When should I remind you?", [
        "remind me to {task}", "set a reminder to {task}", "don't let me forget to {task}",
        "reminder: {task}", "add a reminder to {task}", "remind me to {task} please",
        "I need to {task}, remind me", "make a reminder to {task}", "note to self: {task}",
        "create a reminder to {task}"], ["help me remember to {task}", "tell me to {task} later",
                                         "drop me a reminder to {task}"]),
}
# the user's answer to a clarifying question
CLARIFY_ANSWER = {
    "get_weather": {"train": ["{city}", "in {city}", "{city} please", "{city}, thanks", "for {city}"],
                    "heldout": ["I'm in {city}", "{city} I guess"]},
    "set_timer": {"train": ["{dur}", "for {dur}", "{dur} please", "make it {dur}", "{dur}, thanks"],
                  "heldout": ["uh, {dur}", "let's say {dur}"]},
    "set_lights": {"train": ["the {room}", "{room}", "in the {room}", "{room} please", "the {room} ones"],
                   "heldout": ["uh the {room}", "{room} I mean"]},
    "set_thermostat": {"train": ["{temp}", "to {temp}", "{temp} please", "make it {temp}", "set it to {temp}"],
                       "heldout": ["let's do {temp}", "uh {temp}"]},
    "add_reminder": {"train": ["{when}", "{when} please", "remind me {when}", "{when}, thanks", "make it {when}"],
                     "heldout": ["uh {when}", "let's say {when}"]},
}
